#!/usr/bin/env python3
"""Lists the functions in src/ longer than N lines (default 80), longest first is up to `sort -rn`.

A function runs from its `fn` line to the closing brace at the same indent (rustfmt's layout).
One with a "Long on purpose: why" comment just above is marked "(reason given)" (issue 15:
no function over about 80 lines without a reason written next to it).
Usage: python3 scripts/long_functions.py [N] | sort -rn
"""
import os,re,sys
N=int(sys.argv[1]) if len(sys.argv)>1 else 80
for root,_,files in os.walk('src'):
    for f in files:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f); L=open(p).read().split('\n')
        for i,l in enumerate(L):
            m=re.match(r'^(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)',l)
            if not m: continue
            ind=m.group(1)
            for j in range(i+1,len(L)):
                if L[j]==ind+'}' : break
            else: continue
            n=j-i+1
            if n>N:
                reason = any('long on purpose' in L[k].lower() or 'long (' in L[k].lower() for k in range(max(0,i-4),i))
                print(f"{n:5} {p}:{i+1} {m.group(5)}{'  (reason given)' if reason else ''}")
