#!/usr/bin/env python3
"""Reference token ids from Hugging Face's GPT2TokenizerFast for gptbench's tokenizer tests.

Encodes a list of hard strings (runs of spaces, trailing spaces, newlines, long numbers, mixed scripts, combining
marks, emoji with ZWJ, "<|endoftext|>" inside text, apostrophes) and writes tests/tokenizer/data/hf_cases.json:

    {"cases": [{"text": ..., "ids": [...], "ids_allow_special": [...]}, ...], ...provenance...}

"ids" encodes "<|endoftext|>" as plain text (gptbench's default, encode(text, allow_special=false));
"ids_allow_special" is Hugging Face's default behaviour, where it becomes the special id 50256
(gptbench's encode(text, allow_special=true)). Neither adds a BOS token.

Runs offline: the tokenizer is loaded from a local directory holding vocab.json and merges.txt, e.g.

    python3 scripts/reference/tokenizer_cases.py ../shared/models/gpt2-tiny-wt2
"""
import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EOT = "<|endoftext|>"

CASES = [
    # Known ids and the basic split.
    "Hello world",
    " Hello",
    "Hello",
    "hello world, this is a test.",
    # Runs of spaces before words, trailing spaces, leading spaces.
    "Hello  world",
    "Hello   world",
    "a    b     c",
    "   leading spaces",
    "trailing space ",
    "trailing spaces   ",
    " ",
    "  ",
    "     ",
    " " * 40,
    "",
    # Newlines, tabs, carriage returns and their mixtures.
    "\n",
    "\n\n",
    "\n\n \n",
    "a\n\n\nb",
    " \n \n ",
    "line one\nline two\n",
    "windows\r\nline\r\n",
    "\ttab",
    "\t\ttabs\tand  spaces \t",
    "a \t b",
    "x\n\n\n\n\n\n\n\n\n\ny",
    "end with newline and spaces\n   ",
    " = Robert Boulter = \n",
    " = = Career = = \n \n",
    # Numbers.
    "1234567890123456789012345678901234567890",
    "3.14159265358979323846",
    "in 2024, 1,000,000 people paid $1,234.56",
    "phone: +1-555-0100, zip 90210",
    "\u0663\u0664\u0665 Arabic-Indic digits",
    "\u00bd \u00b2 \u2167 \u2460 vulgar fractions, superscripts, roman numerals",
    "abc123def 4five6",
    # Contractions and apostrophes.
    "I'm, you're, he's, we've, they'll, I'd, can't, won't",
    "I'M YOU'RE HE'S WE'VE THEY'LL I'D",
    "it\u2019s John\u2019s car \u2018quoted\u2019",
    "''double'' 'single' '",
    "'s't're've'm'll'd",
    " 's 't",
    "rock'n'roll",
    "don't'",
    # Letters with accents, combining marks, other scripts.
    "na\u00efve caf\u00e9 r\u00e9sum\u00e9 \u00fcber",
    "e\u0301 combining acute, n\u0303o",
    "a\u0300\u0301\u0302\u0303 stacked marks",
    "\u03a9\u2248\u00e7\u221a\u222b",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u4f60\u597d\uff0c\u4e16\u754c\u3002\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002",
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c",
    "\uc548\ub155\ud558\uc138\uc694",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e",
    "\u0e44\u0e17\u0e22 \u0e20\u0e32\u0e29\u0e32",
    "English\u65e5\u672c\u8a9e\u0420\u0443\u0441\u0441\u043a\u0438\u0439123abc",
    "mixed: caf\u00e9 \u5317\u4eac 42 \u0394\u03b5\u03bb\u03c4\u03b1!",
    # Emoji, ZWJ sequences, modifiers, flags, variation selectors.
    "\U0001F600",
    "a\U0001F600b",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family",
    "\U0001F44D\U0001F3FD thumbs",
    "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5 flags",
    "\u2764\ufe0f heart",
    "\U0001F3F3\ufe0f\u200d\U0001F308",
    "smile \U0001F600\U0001F600\U0001F600 !",
    # Unusual white space: no-break space, ideographic space, line separator, NEL, zero-width space,
    # Mongolian vowel separator (white space before Unicode 6.3, not after), vertical tab, form feed.
    "a\u00a0b",
    "a \u00a0 b",
    "a\u3000b",
    "a\u2028b",
    "a\u0085b",
    "a\u200bb",
    "a\u180eb",
    "a\u202fb\u205fc",
    "x\x0by\x0cz",
    "a\x1cb\x1dc\x1ed\x1ff",
    # Punctuation, symbols, code.
    "Hello!!! ??? ... ---",
    "@-@ wikitext , style . @,@",
    "<html><body class=\"x\">text</body></html>",
    "C++ && x->y != z; // comment",
    "email@example.com http://example.com/a?b=1&c=2#frag",
    "\u00a9\u00ae\u2122 \u20ac100 \u00a35 \u00a5",
    "\u2014em dash\u2013en dash\u2026",
    # Control characters.
    "\x00null\x01",
    "del\x7f",
    # Long runs.
    "a" * 300,
    "\n" * 20,
    "!" * 50,
    "9" * 100,
    # "<|endoftext|>" in text.
    "Hello<|endoftext|>world",
    EOT,
    "a " + EOT + " b",
    EOT + EOT,
    EOT + "\n\nNext document",
    "first document." + EOT + "Second",
    "<|endoftext",
    "<|endoftext|",
    "<|ENDOFTEXT|>",
]


def load_tokenizer(model_dir):
    try:
        from transformers import GPT2TokenizerFast as tokenizer_class
    except ImportError:  # transformers releases where the fast class is the only GPT-2 tokenizer
        from transformers import GPT2Tokenizer as tokenizer_class
    tokenizer = tokenizer_class.from_pretrained(model_dir, local_files_only=True)
    if not hasattr(tokenizer, "backend_tokenizer"):
        sys.exit(f"{tokenizer_class.__name__} loaded from {model_dir} is not backed by the tokenizers library")
    return tokenizer


def encode(tokenizer, text, split_special_tokens):
    """Ids without BOS/EOS; split_special_tokens=True treats <|endoftext|> as plain text."""
    # The tokenizers engine behind GPT2TokenizerFast, with the special-token option set on it directly ...
    backend = tokenizer.backend_tokenizer
    saved = backend.encode_special_tokens
    backend.encode_special_tokens = split_special_tokens
    try:
        by_engine = backend.encode(text, add_special_tokens=False).ids
    finally:
        backend.encode_special_tokens = saved
    # ... and the tokenizer's own call, where this transformers release takes the option, as a cross-check.
    try:
        by_call = tokenizer(text, add_special_tokens=False, split_special_tokens=split_special_tokens)["input_ids"]
    except TypeError:
        by_call = None
    if by_call is not None and list(by_call) != list(by_engine):
        # A release that ignores the option (with a warning) lands here; the engine's ids are the ones to keep.
        print(f"warning: tokenizer call and engine disagree on {text!r} (split_special_tokens="
              f"{split_special_tokens}): {list(by_call)} vs {list(by_engine)}; keeping the engine's", file=sys.stderr)
    return list(by_engine)


def check_shared_reference(tokenizer, model_dir):
    """When the model sits in ../shared/models/, proves this tokenizer reproduces the shared reference's
    WikiText-2 token stream (count and int32-LE sha256); returns a one-line verdict for the output file."""
    import hashlib
    import struct

    shared = os.path.normpath(os.path.join(model_dir, "..", ".."))
    reference_path = os.path.join(shared, "reference", "gpt2-tiny-wt2.json")
    if not os.path.isfile(reference_path):
        return "skipped: no shared reference beside the model"
    with open(reference_path, encoding="utf-8") as f:
        reference = json.load(f)
    dataset_path = os.path.join(shared, reference["dataset"])
    if not os.path.isfile(dataset_path):
        return "skipped: dataset missing"
    # Text mode with universal newlines ("\r\n" -> "\n"), as the reference was computed: the file has CRLF ends.
    with open(dataset_path, encoding="utf-8") as f:
        text = f.read()
    ids = encode(tokenizer, text, split_special_tokens=True)
    digest = hashlib.sha256(struct.pack(f"<{len(ids)}i", *ids)).hexdigest()
    if len(ids) != reference["dataset_gpt2_tokens"] or digest != reference["dataset_ids_sha256_int32le"]:
        sys.exit(f"this tokenizer gives {len(ids)} ids (sha256 {digest}) on {dataset_path}, the reference says "
                 f"{reference['dataset_gpt2_tokens']} ({reference['dataset_ids_sha256_int32le']})")
    print(f"shared reference reproduced: {len(ids)} ids, sha256 {digest}")
    return f"ok: {len(ids)} ids, sha256 {digest}"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "tests", "tokenizer", "data", "hf_cases.json")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="directory with vocab.json and merges.txt (e.g. ../shared/models/gpt2-tiny-wt2)")
    parser.add_argument("--out", default=default_out, help="output JSON (default: tests/tokenizer/data/hf_cases.json)")
    args = parser.parse_args()

    import transformers
    import tokenizers

    tokenizer = load_tokenizer(args.model_dir)
    eot_id = tokenizer.convert_tokens_to_ids(EOT)
    if eot_id != 50256:
        sys.exit(f"unexpected id for {EOT}: {eot_id}")

    cases = []
    for text in CASES:
        ids = encode(tokenizer, text, split_special_tokens=True)
        ids_allow_special = encode(tokenizer, text, split_special_tokens=False)
        if eot_id in ids:
            sys.exit(f"split_special_tokens=True still produced {eot_id} for {text!r}")
        if (EOT in text) != (eot_id in ids_allow_special):
            sys.exit(f"special-token handling looks wrong for {text!r}: {ids_allow_special}")
        cases.append({"text": text, "ids": ids, "ids_allow_special": ids_allow_special})

    dataset_check = check_shared_reference(tokenizer, args.model_dir)
    result = {
        "generator": "scripts/reference/tokenizer_cases.py",
        "tokenizer_class": type(tokenizer).__name__,
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "model_dir": os.path.basename(os.path.normpath(args.model_dir)),
        "shared_reference_check": dataset_check,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    # One case a line: readable in a diff, and ASCII-only (\u escapes) so no editor can alter the bytes.
    head = json.dumps({k: v for k, v in result.items() if k != "cases"}, ensure_ascii=True, indent=1)
    lines = ",\n".join("  " + json.dumps(case, ensure_ascii=True) for case in cases)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(head[:-2] + ',\n "cases": [\n' + lines + "\n ]\n}\n")
    print(f"wrote {len(cases)} cases to {args.out} ({type(tokenizer).__name__}, transformers "
          f"{transformers.__version__}, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
