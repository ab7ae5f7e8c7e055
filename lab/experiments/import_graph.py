"""The import graph of a zsgm tree: which room imports which, then, for the modules named, the zsgm
modules each imports (ARCHITECTURE.md's check, extended to modules). Any tree, e.g. an old commit:

    python lab/experiments/import_graph.py . pipelines.gzsl generate.engine
    git archive 94bbf1c | tar -x -C /tmp/old && python lab/experiments/import_graph.py /tmp/old pipelines.gzsl
"""
import ast, pathlib, collections, sys
root = pathlib.Path(sys.argv[1]); show = sys.argv[2:] 
rooms = ["extract", "generate", "evaluate", "pipelines", "bench"]
edges = collections.defaultdict(set); mod_edges = {}
for room in rooms:
    for f in sorted((root / room).rglob("*.py")):
        mod = ".".join(f.relative_to(root).with_suffix("").parts)
        deps = set()
        for n in ast.walk(ast.parse(f.read_text())):
            mods = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                [n.module] if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module else []
            deps |= {m for m in mods if m.split(".")[0] in rooms}
        edges[room] |= {m.split(".")[0] for m in deps} - {room}
        mod_edges[mod] = sorted(deps - {mod})
for room in rooms:
    print(f"{room:10s} -> {', '.join(sorted(edges[room])) or '-'}")
for mod, deps in mod_edges.items():
    if any(mod == s or mod.startswith(s + ".") for s in show):
        print(f"  {mod}: {', '.join(deps) or '-'}")
