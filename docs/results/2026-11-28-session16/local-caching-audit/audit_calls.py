import json,sys,glob
for d in sys.argv[1:]:
    g=json.load(open(glob.glob(d+'/processed/gates.json')[0])) if glob.glob(d+'/processed/gates.json') else None
    verdict = g.get('verdict') if g else '?'
    ca = [x for x in (g.get('gates',[]) if g else []) if x.get('name')=='caching_audit']
    print('==',d,verdict, ca[0]['status'] if ca else '', ca[0]['summary'][:200] if ca else '')
    for f in glob.glob(d+'/raw/bench_*.jsonl'):
        for l in open(f):
            r=json.loads(l)
            c=r.get('cell') or r.get('cell_id')
            if 'fresh_input_call_ms' in r and 'b8' in str(c):
                lat = r.get('call_ms', r.get('ttft_ms_all'))
                print(' ',c.replace('/prefill',''), r['repetition'], 'loop',[round(x,1) for x in lat], 'F',[round(x,1) for x in r['fresh_input_call_ms']],'R',[round(x,1) for x in r['repeated_input_call_ms']], 'sp %.1f%%'%(100*(1-r['repeated_input_ms']/r['fresh_input_ms'])))
