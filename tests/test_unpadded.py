"""The unpadded graph: calls without padding skip the attention masks and give the same outputs, bit for bit."""
import numpy as np
import pytest

from medcorr.detector import MODEL_FILE, OnnxDetector, default_model_dir, unpadded_name, weights_name

try:
    from tests.test_detector_concurrency import assert_same_predictions, notes
except ImportError:  # tests/ on sys.path rather than the repo root
    from test_detector_concurrency import assert_same_predictions, notes


def test_file_names():
    assert unpadded_name("model.onnx") == "model.unpadded.onnx"
    assert weights_name("model.onnx") == weights_name("model.unpadded.onnx") == "model.data"
    assert weights_name("model.fp32.unpadded.onnx") == "model.fp32.data"


def test_one_window_calls_run_the_unpadded_graph_with_identical_outputs():
    inputs = notes()
    fast = OnnxDetector(num_threads=2)
    assert fast.unpadded_file == "model.unpadded.onnx"
    masked = OnnxDetector(num_threads=2)
    masked.unpadded_file = None
    assert_same_predictions(fast.predict(inputs), masked.predict(inputs))
    assert set(fast._sessions) == {"model.unpadded.onnx"} and set(masked._sessions) == {MODEL_FILE}


def test_a_padded_batch_runs_the_masked_graph():
    detector = OnnxDetector(num_threads=1)
    windows = [w for ws in detector.encoder.encode_notes(notes()[:2]) for w in ws][:2]
    assert windows[0].length != windows[1].length
    batch = detector.encoder.collate(windows)
    assert not batch.attention_mask.all()
    segment, tokens = detector.run_batch(batch)
    assert MODEL_FILE in detector._sessions
    reference = OnnxDetector(num_threads=1, batch_size=8)
    assert reference.unpadded_file is None  # batches of several windows: the masked graph only
    expected = reference.run_batch(batch)
    assert np.array_equal(segment, expected[0]) and np.array_equal(tokens, expected[1])


def test_model_files_list_graphs_and_weights():
    assert OnnxDetector().model_files == ["model.onnx", "model.unpadded.onnx", "model.data"]
    assert OnnxDetector(batch_size=8).model_files == ["model.onnx", "model.data"]


def test_drop_attention_masks_removes_every_mask_addition():
    onnx = pytest.importorskip("onnx")
    from medcorr.train.unpadded import drop_attention_masks

    model = onnx.load(str(default_model_dir() / MODEL_FILE), load_external_data=False)
    before = len(model.graph.node)
    adds_before = sum(n.op_type == "Add" for n in model.graph.node)
    assert drop_attention_masks(model) == 6  # one per layer
    producers = {out: node for node in model.graph.node for out in node.output}
    softmax_inputs = [producers[n.input[0]].op_type for n in model.graph.node if n.op_type == "Softmax"]
    assert len(softmax_inputs) == 6 and "Add" not in softmax_inputs
    assert sum(n.op_type == "Add" for n in model.graph.node) <= adds_before - 6
    assert len(model.graph.node) < before - 6  # and nodes that built the mask


def test_drop_attention_masks_refuses_a_softmax_it_does_not_know():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from medcorr.train.unpadded import drop_attention_masks

    graph = helper.make_graph([helper.make_node("Softmax", ["input_ids"], ["y"])], "g",
                              [helper.make_tensor_value_info("input_ids", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    with pytest.raises(ValueError, match="not fed by an addition"):
        drop_attention_masks(helper.make_model(graph))


def test_attention_loses_its_batch_axis_in_the_unpadded_graph():
    onnx = pytest.importorskip("onnx")
    from medcorr.train.unpadded import drop_attention_batch_axis, drop_attention_masks

    model = onnx.load(str(default_model_dir() / MODEL_FILE), load_external_data=False)
    drop_attention_masks(model)
    assert drop_attention_batch_axis(model) == 24  # 4 per layer: queries, keys, values, context
    perms = [list(a.ints) for n in model.graph.node if n.op_type == "Transpose" for a in n.attribute]
    assert sorted(map(tuple, perms)) == sorted([(1, 0, 2)] * 18 + [(1, 2, 0)] * 6)
    assert all(i.type.tensor_type.shape.dim[0].dim_value == 1 for i in model.graph.input)
    shipped = onnx.load(str(default_model_dir() / unpadded_name(MODEL_FILE)), load_external_data=False)
    shipped_perms = [list(a.ints) for n in shipped.graph.node if n.op_type == "Transpose" for a in n.attribute]
    assert sorted(map(tuple, shipped_perms)) == sorted(map(tuple, perms))  # the shipped twin has it


def test_drop_attention_batch_axis_refuses_an_attention_it_does_not_know():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from medcorr.train.unpadded import drop_attention_batch_axis

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),
             helper.make_node("Softmax", ["t"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8]),
                                           helper.make_tensor_value_info("shape", TensorProto.INT64, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ValueError, match="not Concat"):
        drop_attention_batch_axis(helper.make_model(graph))
