"""The unpadded graph: the detector's graph for one window per call, weights shared.

A call on one window (the CPU default) has no padding, so every attention mask value is 0.0 and
``scores + mask`` equals ``scores`` bit for bit. onnxruntime still adds the broadcast ``[batch, 1, L, L]``
mask to every layer's ``[batch, heads, L, L]`` scores and builds the mask itself: about 1 ms of a 17 ms
window on one thread. The unpadded graph leaves both out; the detector runs it for calls without padding.

With one window there is no batch axis to keep either: the attention tensors become ``[L, heads, d]``
instead of ``[1, L, heads, d]`` (:func:`drop_attention_batch_axis`). The head transposes are then of the
form onnxruntime folds into its ``FusedMatMul`` (``transBatchA`` / ``transBatchB``, a strided read
instead of a copy): 18 of the 24 ``Transpose`` nodes go, with the same arithmetic, so the same outputs.
The unpadded graph's inputs have a batch of exactly 1.

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


def _perm(node) -> list[int]:
    return [int(p) for a in node.attribute if a.name == "perm" for p in a.ints]


def drop_attention_batch_axis(model) -> int:
    """For a graph that runs one window per call: attention ``Reshape`` nodes to ``[L, heads, d]`` and head
    ``Transpose`` nodes without the batch axis, inputs and outputs with a batch of 1. Returns how many
    transposes were rewritten (four per layer); raises ``ValueError`` on an attention of another form.

    Each layer has ``Reshape(x, Concat(batch, L, heads, d))`` then ``Transpose`` for the queries, keys
    and values, and a ``Transpose`` of the ``probs × values`` ``MatMul`` before the reshape back to
    ``[batch, L, hidden]`` (which stays: ``[L, heads, d]`` reshapes to it as ``[1, L, heads, d]`` did).
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers = sum(node.op_type == "Softmax" for node in graph.node)
    head_shapes, head_reshapes, transposes = {}, set(), []
    for node in graph.node:
        perm = _perm(node) if node.op_type == "Transpose" else []
        source = producers.get(node.input[0]) if perm else None
        if len(perm) != 4 or perm[0] != 0 or source is None or source.op_type not in ("Reshape", "MatMul"):
            continue
        if source.op_type == "Reshape":
            shape = producers.get(source.input[1])
            if shape is None or shape.op_type != "Concat" or len(shape.input) != 4:
                raise ValueError(f"attention reshape {source.name!r}: its shape is not Concat(batch, L, heads, d)")
            head_shapes[shape.output[0]] = shape
            head_reshapes.add(source.name)
        transposes.append(node)
    if not layers or len(transposes) != 4 * layers or len(head_reshapes) != 3 * layers:
        raise ValueError(f"expected 4 head transposes and 3 head reshapes per layer ({layers} layers), found "
                         f"{len(transposes)} and {len(head_reshapes)}")
    for name, shape in head_shapes.items():
        if any(user.name not in head_reshapes for user in consumers.get(name, [])):
            raise ValueError(f"shape {shape.name!r} is used outside the attention reshapes")
        del shape.input[0]  # the batch size
    for node in transposes:
        perm = _perm(node)
        attribute = next(a for a in node.attribute if a.name == "perm")
        del attribute.ints[:]
        attribute.ints.extend(p - 1 for p in perm[1:])
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = 1
    del graph.value_info[:]  # shapes recorded for the 4-d layout; onnxruntime infers them again
    return len(transposes)


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
    """Move ``graph_path``'s weights to ``<name>.data`` and write its unpadded twin (one window per call: no
    attention masks, no batch axis in attention) beside it; returns the twin's path. The original graph
    computes exactly what it did."""
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
    drop_attention_batch_axis(twin)
    target = graph_path.with_name(unpadded_name(graph_path.name))
    onnx.save_model(twin, str(target))
    return target
