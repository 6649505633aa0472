#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "bench/config_schema.h"
#include "bench/run_config.h"
#include "common/error.h"
#include "common/paths.h"
#include "model/config.h"

namespace gptbench::bench {
namespace {

using ::testing::HasSubstr;

const char* kMinimal = R"(
model: {source: /models/tiny, expect: {name: gpt2-tiny-wt2, parameters: 7357312}}
backends: [{name: native, device: cpu, precisions: [fp32]}]
scenarios: [{kind: prefill, batch: 1, seq: 128}]
)";

// The message of the Error that parsing `yaml` (with overrides) throws; "" when it does not throw.
std::string config_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_run_config(yaml, "cfg/test.yaml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, MinimalConfigGetsDefaults) {
  RunConfig c = parse_run_config(kMinimal, "cfg/test.yaml");
  EXPECT_EQ(c.model.source, "/models/tiny");
  EXPECT_EQ(c.model.expect_name, "gpt2-tiny-wt2");
  EXPECT_EQ(c.model.expect_parameters, 7357312);
  ASSERT_EQ(c.backends.size(), 1u);
  EXPECT_EQ(c.measure.repetitions, 5);
  EXPECT_FALSE(c.perplexity.enabled);
  auto cells = expand_cells(c);
  ASSERT_EQ(cells.size(), 1u);
  EXPECT_EQ(cells[0].id(), "native/cpu/fp32/prefill/b1_s128");
  EXPECT_EQ(cells[0].tokens_per_call(), 128);
}

TEST(RunConfig, SharedPrefixIsExpanded) {
  RunConfig c = parse_run_config(kMinimal, "x.yaml", {"model.source=${shared}/models/gpt2-tiny-wt2"});
  EXPECT_EQ(c.model.source, shared_dir() + "/models/gpt2-tiny-wt2");
}

TEST(RunConfig, UnknownKeyNamesFileKeyAndAllowedKeys) {
  std::string msg = config_error(std::string(kMinimal) + "repetitons: 3\n");
  EXPECT_THAT(msg, HasSubstr("cfg/test.yaml: repetitons: unknown key; allowed: "));
  EXPECT_THAT(msg, HasSubstr("repetitions"));
  msg = config_error(R"(
model: {source: /m, expect: {name: gpt2}}
backends: [{name: native, precision: [fp32]}]
scenarios: [{kind: prefill}]
)");
  EXPECT_THAT(msg, HasSubstr("cfg/test.yaml: backends[0].precision: unknown key; allowed: name, device, precisions"));
  msg = config_error(R"(
model: {source: /m, expect: {name: gpt2, params: 5}}
backends: [{name: native}]
scenarios: [{kind: prefill}]
)");
  EXPECT_THAT(msg, HasSubstr("cfg/test.yaml: model.expect.params: unknown key; allowed: name, parameters"));
}

TEST(RunConfig, WrongTypesNameTheKey) {
  EXPECT_THAT(
      config_error(std::string(kMinimal) + "repetitions: many\n"),
      HasSubstr("cfg/test.yaml: repetitions: expected an integer, got 'many'; allowed: an integer in 1..100000"));
  EXPECT_THAT(config_error(std::string(kMinimal) + "min_seconds: [1]\n"),
              HasSubstr("cfg/test.yaml: min_seconds: expected a number, got a list"));
  EXPECT_THAT(config_error(std::string(kMinimal) + "perplexity: {enabled: maybe}\n"),
              HasSubstr("cfg/test.yaml: perplexity.enabled: expected true or false, got 'maybe'"));
  EXPECT_THAT(config_error(std::string(kMinimal) + "perplexity: 5\n"),
              HasSubstr("cfg/test.yaml: perplexity: expected a mapping"));
  EXPECT_THAT(config_error(R"(
model: {source: /m, expect: {name: gpt2}}
backends: {name: native}
scenarios: [{kind: prefill}]
)"),
              HasSubstr("cfg/test.yaml: backends: expected a list, got a mapping"));
}

TEST(RunConfig, ImpossibleValuesAreRejected) {
  EXPECT_THAT(config_error(kMinimal, {"scenarios.0.batch=0"}),
              HasSubstr("cfg/test.yaml: scenarios[0].batch: 0 is out of range; allowed: integers in 1..4096"));
  EXPECT_THAT(config_error(std::string(kMinimal) + "perplexity: {ctx: 256, stride: 512}\n"),
              HasSubstr("cfg/test.yaml: perplexity.stride: 512 is larger than ctx 256"));
  EXPECT_THAT(config_error(kMinimal, {"backends.0.name=tensorrt"}),
              HasSubstr("cfg/test.yaml: backends[0].name: unknown value 'tensorrt'; allowed: native, onnxruntime"));
  EXPECT_THAT(config_error(kMinimal, {"backends.0.precisions=[fp32, int4]"}),
              HasSubstr("cfg/test.yaml: backends[0].precisions[1]: unknown value 'int4'; allowed: fp32, tf32, fp16"));
  EXPECT_THAT(config_error(kMinimal, {"backends.0.precisions=[fp32, fp32]"}),
              HasSubstr("backends[0].precisions[1]: 'fp32' appears twice"));
  EXPECT_THAT(config_error(kMinimal, {"backends.0.precisions=[tf32]"}),
              HasSubstr("backends[0].precisions: tf32 exists only on cuda devices"));
  EXPECT_THAT(config_error(kMinimal, {"scenarios.0.kind=train"}),
              HasSubstr("scenarios[0].kind: unknown value 'train'; allowed: prefill, decode"));
  EXPECT_THAT(config_error(kMinimal, {"repetitions=0"}), HasSubstr("repetitions: 0 is out of range"));
  EXPECT_THAT(config_error(kMinimal, {"model.expect={}"}), HasSubstr("model.expect: names neither a model"));
  EXPECT_THAT(config_error("backends: []\n"), HasSubstr("cfg/test.yaml: model: is required"));
  EXPECT_THAT(config_error("model: [1\n"), HasSubstr("cfg/test.yaml: line"));
}

TEST(RunConfig, SequenceLongerThanTheModelIsRejectedWithTheKey) {
  RunConfig c = parse_run_config(kMinimal, "cfg/test.yaml", {"scenarios.0.seq=[128, 2048]"});
  Gpt2Config model;  // gpt2 shape: n_positions 1024
  try {
    check_against_model(c, model);
    FAIL() << "seq 2048 accepted";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()),
                HasSubstr("cfg/test.yaml: scenarios[0].seq: 2048 exceeds the model's n_positions 1024"));
  }
  RunConfig d = parse_run_config(kMinimal, "cfg/d.yaml", {"scenarios=[{kind: decode, prompt: 1000, new_tokens: 100}]"});
  try {
    check_against_model(d, model);
    FAIL() << "prompt + new_tokens 1100 accepted";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()),
                HasSubstr("cfg/d.yaml: scenarios[0].prompt: prompt 1000 + new_tokens 100 = 1100"));
  }
  RunConfig ok = parse_run_config(kMinimal, "cfg/test.yaml", {"scenarios.0.seq=1024"});
  EXPECT_NO_THROW(check_against_model(ok, model));
}

TEST(RunConfig, ListsAndRangesExpandIntoCellsInOrder) {
  RunConfig c = parse_run_config(R"(
model: {source: /m, expect: {name: gpt2}}
backends:
  - {name: native, device: cpu, precisions: [fp32, int8]}
scenarios:
  - {kind: prefill, batch: [1, 8], seq: 128..1024 x2}
  - {kind: decode, batch: 1, prompt: 128..512 +128, new_tokens: [16, 32]}
)",
                                 "c.yaml");
  auto cells = expand_cells(c);
  // per precision: 2 batches x 4 lengths + 4 prompts x 2 new_tokens = 16
  ASSERT_EQ(cells.size(), 32u);
  EXPECT_EQ(cells[0].id(), "native/cpu/fp32/prefill/b1_s128");
  EXPECT_EQ(cells[1].id(), "native/cpu/fp32/prefill/b1_s256");
  EXPECT_EQ(cells[3].id(), "native/cpu/fp32/prefill/b1_s1024");
  EXPECT_EQ(cells[4].id(), "native/cpu/fp32/prefill/b8_s128");
  EXPECT_EQ(cells[8].id(), "native/cpu/fp32/decode/b1_p128_n16");
  EXPECT_EQ(cells[9].id(), "native/cpu/fp32/decode/b1_p128_n32");
  EXPECT_EQ(cells[15].id(), "native/cpu/fp32/decode/b1_p512_n32");
  EXPECT_EQ(cells[16].id(), "native/cpu/int8/prefill/b1_s128");
  for (std::size_t i = 0; i < cells.size(); ++i) EXPECT_EQ(cells[i].index, static_cast<int>(i));
}

TEST(RunConfig, IntValueSyntax) {
  auto values = [](const std::string& yaml) {
    return ConfigValue(YAML::Load(yaml), "f.yaml", "k").as_int_values(1, 100000);
  };
  EXPECT_EQ(values("5"), (std::vector<std::int64_t>{5}));
  EXPECT_EQ(values("[1, 8, 32]"), (std::vector<std::int64_t>{1, 8, 32}));
  EXPECT_EQ(values("128..1024 x2"), (std::vector<std::int64_t>{128, 256, 512, 1024}));
  EXPECT_EQ(values("100..1000 x2"), (std::vector<std::int64_t>{100, 200, 400, 800}));
  EXPECT_EQ(values("128..512 +128"), (std::vector<std::int64_t>{128, 256, 384, 512}));
  EXPECT_EQ(values("1..4"), (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(values("[1, 16..64 x4]"), (std::vector<std::int64_t>{1, 16, 64}));
  EXPECT_THROW(values("512..128 x2"), Error);
  EXPECT_THROW(values("1..8 x1"), Error);
  EXPECT_THROW(values("[1, 1]"), Error);
  EXPECT_THROW(values("1.5"), Error);
  EXPECT_THROW(values("[]"), Error);
  try {
    values("0..8 +1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("f.yaml: k: range '0..8 +1' leaves 1..100000"));
  }
}

TEST(RunConfig, OverridesAreParsedAsYaml) {
  RunConfig c = parse_run_config(kMinimal, "t.yaml",
                                 {"repetitions=2", "perplexity.enabled=true", "perplexity.max_tokens=4096",
                                  "scenarios.0.batch=[1, 4]", "backends.0.options.calibration_cache=c.calib"});
  EXPECT_EQ(c.measure.repetitions, 2);
  EXPECT_EQ(c.scenarios[0].measure.repetitions, 2);  // scenario settings inherit the top level
  EXPECT_TRUE(c.perplexity.enabled);
  EXPECT_EQ(c.perplexity.max_tokens, 4096);
  EXPECT_EQ(c.scenarios[0].batch, (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(c.backends[0].options.at("calibration_cache"), "c.calib");
  EXPECT_THAT(config_error(kMinimal, {"repetitions"}), HasSubstr("--set: 'repetitions' is not key=value"));
  EXPECT_THAT(config_error(kMinimal, {"scenarios.3.batch=1"}),
              HasSubstr("scenarios.3: --set scenarios.3.batch=1: no such list element"));
  EXPECT_THAT(config_error(kMinimal, {"bogus.key=1"}), HasSubstr("t.yaml: bogus: unknown key"));
}

// A backend reads only the option keys it knows: a misspelt one would be ignored and the run would look valid
// without the setting it names, so the configuration names the key, the backend and the keys it has.
TEST(RunConfig, UnknownBackendOptionIsOneClearError) {
  const std::string cuda = R"(
model: {source: /models/tiny, expect: {name: gpt2-tiny-wt2, parameters: 7357312}}
backends: [{name: native, device: cpu, precisions: [fp32]},
           {name: native, device: cuda, precisions: [fp16], options: {attention_ksplt: "0"}}]
scenarios: [{kind: prefill, batch: 1, seq: 128}]
)";
  const std::string message = config_error(cuda);
  EXPECT_THAT(message, HasSubstr("cfg/test.yaml: backends[1].options.attention_ksplt: unknown option for backend "
                                 "native on cuda; allowed: "));
  EXPECT_THAT(message, HasSubstr("attention_ksplit"));
  // a key one backend has is not a key of another
  EXPECT_THAT(config_error(kMinimal, {"backends.0.options.graph_optimization=all"}),
              HasSubstr("backends[0].options.graph_optimization: unknown option for backend native on cpu; allowed: "
                        "calibration_cache"));
  // and every key the backends document parses
  EXPECT_EQ(config_error(kMinimal, {"backends.0.device=cuda", "backends.0.options.attention_ksplit=0",
                                    "backends.0.options.wgmma_tile=64x32"}),
            "");
}

// A list element in --set as the error lines print it (backends[0].precisions) is the same as backends.0.precisions;
// a bracket that is not a list index is one clear error naming it.
TEST(RunConfig, OverrideKeysTakeListIndicesInBrackets) {
  RunConfig c = parse_run_config(kMinimal, "t.yaml", {"backends[0].precisions=[fp32, fp16]", "scenarios[0].batch=4"});
  EXPECT_EQ(c.backends[0].precisions, (std::vector<std::string>{"fp32", "fp16"}));
  EXPECT_EQ(c.scenarios[0].batch, (std::vector<std::int64_t>{4}));
  RunConfig d = parse_run_config(kMinimal, "t.yaml", {"backends[0]={name: native, device: cpu, precisions: [fp16]}"});
  EXPECT_EQ(d.backends[0].precisions, (std::vector<std::string>{"fp16"}));
  EXPECT_THAT(config_error(kMinimal, {"backends[3].name=native"}),
              HasSubstr("cfg/test.yaml: backends.3: --set backends[3].name=native: no such list element"));
  EXPECT_THAT(config_error(kMinimal, {"backends[x].name=native"}),
              HasSubstr("cfg/test.yaml: backends[x].name: --set backends[x].name=native: '[x]' is not a list index"));
  EXPECT_THAT(config_error(kMinimal, {"backends[0.name=native"}), HasSubstr("'[0.name' is not a list index"));
  EXPECT_THAT(config_error(kMinimal, {"backends]0.name=native"}), HasSubstr("']' without '['"));
}

TEST(RunConfig, DuplicateKeysAreRejected) {
  EXPECT_THAT(config_error(std::string(kMinimal) + "repetitions: 3\nrepetitions: 4\n"),
              HasSubstr("cfg/test.yaml: repetitions: the key appears twice"));
}

TEST(RunConfig, DuplicateCellsAndBackendsAreRejected) {
  EXPECT_THAT(
      config_error(std::string(kMinimal), {"scenarios=[{kind: prefill, seq: 128}, {kind: prefill, seq: [64, 128]}]"}),
      HasSubstr("cell native/cpu/fp32/prefill/b1_s128 appears twice"));
  EXPECT_THAT(config_error(std::string(kMinimal), {"backends=[{name: native}, {name: native, precisions: int8}]"}),
              HasSubstr("backends[1]: backend native on cpu is listed twice"));
}

TEST(RunConfig, ShippedConfigsAreValid) {
  for (const char* name : {"smoke", "baseline", "matrix", "sweep"}) {
    const std::string path = std::string(GPTBENCH_SOURCE_DIR) + "/configs/" + name + ".yaml";
    RunConfig c;
    ASSERT_NO_THROW(c = load_run_config(path)) << path;
    EXPECT_FALSE(expand_cells(c).empty()) << path;
    EXPECT_NO_THROW(check_against_model(c, Gpt2Config{})) << path;  // every length fits n_positions 1024
  }
  RunConfig smoke = load_run_config(std::string(GPTBENCH_SOURCE_DIR) + "/configs/smoke.yaml");
  EXPECT_EQ(smoke.model.expect_parameters, 7357312);
  EXPECT_EQ(smoke.model.source, default_model_dir());
  RunConfig matrix = load_run_config(std::string(GPTBENCH_SOURCE_DIR) + "/configs/matrix.yaml");
  EXPECT_EQ(matrix.model.expect_name, "gpt2");
  EXPECT_EQ(matrix.scenarios.size(), 7u);
  EXPECT_EQ(matrix.measure.repetitions, 3);
}

}  // namespace
}  // namespace gptbench::bench
