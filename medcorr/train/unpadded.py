"""The unpadded graph: the detector's graph without its attention-mask additions, weights shared.

A call on one window (the CPU default) has no padding, so every attention mask value is 0.0 and
``scores + mask`` equals ``scores`` bit for bit. onnxruntime still adds the broadcast ``[batch, 1, L, L]``
mask to every layer's ``[batch, heads, L, L]`` scores and builds the mask itself: about 1 ms of a 17 ms
window on one thread. The unpadded graph leaves both out; the detector runs it for calls without padding.

The weights move to one external-data file (``<name>.data``) that both graphs reference, so the model
directory holds them once.
"""
from __future__ import annotations

from pathlib import Path

from medcorr.detector import unpadded_name, weights_name

MASK_INPUT = "attention_mask"
TOKEN_INPUT = "input_ids"
SHAPE_ONLY = frozenset({"Shape", "Size"})


def _ancestor_inputs(tensor: str, producers: dict, graph_inputs: set[str], memo: dict) -> frozenset[str]:
    """The graph inputs whose values a tensor depends on (a ``Shape`` reads only its input's shape)."""
    if tensor in memo:
        return memo[tensor]
    stack, seen, found = [tensor], set(), set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in graph_inputs:
            found.add(name)
        node = producers.get(name)
        if node is not None and node.op_type not in SHAPE_ONLY:
            stack.extend(i for i in node.input if i)
    memo[tensor] = frozenset(found)
    return memo[tensor]


def drop_attention_masks(model) -> int:
    """Rewire every attention ``Softmax(scores + mask)`` to ``Softmax(scores)`` and prune what fed only the
    masks. Returns how many additions were dropped; raises ``ValueError`` when a softmax has another form."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    inputs = {i.name for i in graph.input}
    memo: dict = {}
    dropped = 0
    for node in graph.node:
        if node.op_type != "Softmax":
            continue
        add = producers.get(node.input[0])
        if add is None or add.op_type != "Add":
            raise ValueError(f"softmax {node.name!r} is not fed by an addition")
        sources = [_ancestor_inputs(i, producers, inputs, memo) for i in add.input]
        masks = [i for i, src in enumerate(sources) if MASK_INPUT in src and TOKEN_INPUT not in src]
        scores = [i for i, src in enumerate(sources) if TOKEN_INPUT in src]
        if len(masks) != 1 or len(scores) != 1:
            raise ValueError(f"softmax {node.name!r}: not an attention-mask addition")
        node.input[0] = add.input[scores[0]]
        dropped += 1
    if not dropped:
        raise ValueError("no attention softmax found")
    _prune(graph)
    return dropped


def _prune(graph) -> None:
    """Remove nodes that no graph output depends on, and initializers no node reads."""
    needed = {out.name for out in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    used = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)


def write_unpadded(graph_path: Path) -> Path:
    """Move ``graph_path``'s weights to ``<name>.data`` and write its unpadded twin beside it; returns the
    twin's path. The original graph computes exactly what it did."""
    import onnx

    graph_path = Path(graph_path)
    weights = weights_name(graph_path.name)
    model = onnx.load(str(graph_path))
    (graph_path.parent / weights).unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(model, str(graph_path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=weights, size_threshold=1024)
    (graph_path.parent / weights).chmod(0o644)  # onnx creates it readable by its owner only
    twin = onnx.load(str(graph_path), load_external_data=False)  # initializers keep their references
    drop_attention_masks(twin)
    target = graph_path.with_name(unpadded_name(graph_path.name))
    onnx.save_model(twin, str(target))
    return target
