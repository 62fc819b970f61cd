"""Every operator graph_net.py runs, against ONNX's own reference implementation (onnx.reference), on random inputs,
in the opsets whose meaning differs: what a user's exported model computes is what the explorer attacks."""

import numpy as np
import pytest
import torch
from made_elsewhere import install_onnx_extra

from explorer.models.graph_net import OPERATORS


@pytest.fixture(scope="module", autouse=True)
def onnx_extra():
    install_onnx_extra()


RANDOM = np.random.default_rng(0)


def floats(*shape: int) -> np.ndarray:
    return RANDOM.standard_normal(shape).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


X4 = floats(2, 3, 6, 6)
# (operator, opset, inputs (None for an omitted optional one), attributes)
CASES = [
    ("Conv", 13, [X4, floats(4, 3, 3, 3), floats(4)], {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    ("Conv", 13, [X4, floats(6, 1, 3, 3)], {"group": 3, "dilations": [2, 2]}),
    ("Gemm", 13, [floats(3, 4), floats(5, 4), floats(5)], {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    ("Gemm", 13, [floats(4, 3), floats(4, 5)], {"transA": 1}),
    ("MatMul", 13, [floats(2, 3, 4), floats(4, 5)], {}),
    ("Add", 13, [floats(2, 3, 4), floats(4)], {}),
    ("Sub", 13, [floats(2, 3, 4), floats(3, 1)], {}),
    ("Mul", 13, [floats(2, 3, 4), floats(1, 3, 4)], {}),
    ("Div", 13, [floats(2, 3, 4), floats(4) + 3], {}),
    ("Relu", 13, [floats(2, 5)], {}),
    ("LeakyRelu", 13, [floats(2, 5)], {"alpha": 0.2}),
    ("Elu", 13, [floats(2, 5)], {"alpha": 0.7}),
    ("Sigmoid", 13, [floats(2, 5)], {}),
    ("Tanh", 13, [floats(2, 5)], {}),
    ("Softmax", 11, [floats(2, 3, 4)], {}),  # before opset 13: flattened from axis 1
    ("Softmax", 13, [floats(2, 3, 4)], {}),  # from opset 13: along the last axis
    ("Softmax", 11, [floats(2, 3, 4)], {"axis": 2}),
    ("LogSoftmax", 11, [floats(2, 3, 4)], {}),
    ("LogSoftmax", 13, [floats(2, 3, 4)], {"axis": 1}),
    ("Clip", 13, [floats(2, 5), np.float32(-0.5), np.float32(0.6)], {}),  # ReLU6 exports as Clip(x, 0, 6)
    ("Clip", 13, [floats(2, 5), None, np.float32(0.1)], {}),
    ("Clip", 7, [floats(2, 5)], {"min": -0.2, "max": 0.3}),
    ("Pad", 13, [X4, ints(0, 0, 1, 2, 0, 0, 3, 1), np.float32(0.5)], {}),
    ("Pad", 13, [X4, ints(0, 0, 2, 1, 0, 0, 1, 2)], {"mode": "reflect"}),
    ("Pad", 13, [X4, ints(0, 0, 1, 1, 0, 0, 2, 0)], {"mode": "edge"}),
    ("Pad", 18, [X4, ints(1, 2, 3, 0), None, ints(2, 3)], {}),  # pads only the axes named
    ("Pad", 19, [X4, ints(0, 0, 1, 2, 0, 0, 2, 1)], {"mode": "wrap"}),
    ("Pad", 7, [X4], {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "value": -1.0}),
    ("MaxPool", 13, [X4], {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", 13, [X4], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("AveragePool", 13, [X4], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", 13, [X4], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("GlobalAveragePool", 13, [X4], {}),
    ("GlobalMaxPool", 13, [X4], {}),
    ("BatchNormalization", 15, [X4, floats(3), floats(3), floats(3), np.abs(floats(3)) + 0.5],
     {"epsilon": 1e-3}),
    ("Flatten", 13, [X4], {"axis": 2}),
    ("Reshape", 13, [X4, ints(0, -1)], {}),
    ("Transpose", 13, [floats(2, 3, 4)], {"perm": [0, 2, 1]}),
    ("Transpose", 13, [floats(2, 3, 4)], {}),
    ("Unsqueeze", 13, [floats(2, 3), ints(0, -1)], {}),
    ("Unsqueeze", 11, [floats(2, 3)], {"axes": [1]}),
    ("Squeeze", 13, [floats(2, 1, 3, 1), ints(1)], {}),
    ("Squeeze", 11, [floats(2, 1, 3, 1)], {}),
    ("Concat", 13, [floats(2, 3), floats(2, 2)], {"axis": 1}),
    ("Shape", 13, [X4], {}),
    ("Gather", 13, [floats(5, 4), ints(3, 0, 3)], {"axis": 0}),
    ("Gather", 13, [floats(2, 5), ints(-1)], {"axis": 1}),
    ("Cast", 13, [floats(2, 5) * 4], {"to": 7}),
    ("Dropout", 13, [floats(2, 5)], {}),
    ("Identity", 13, [floats(2, 5)], {}),
]


def reference(op: str, opset: int, inputs: list, attrs: dict) -> np.ndarray:
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = ["" if value is None else f"in{i}" for i, value in enumerate(inputs)]
    while names and not names[-1]:
        names.pop()
    given = [(name, np.asarray(value)) for name, value in zip(names, inputs, strict=False) if name]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["out"], **attrs)], "case",
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
         for name, value in given],
        [helper.make_tensor_value_info("out", onnx.TensorProto.UNDEFINED, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, dict(given))[0]


def softmax_before_opset_13(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    """(Log)Softmax as opsets 1 to 12 define it: the input coerced to 2-D at `axis`, each row normalised.
    onnx.reference implements only the opset-13 meaning, so these cases are checked against the spec here."""
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    exp = np.exp(rows - rows.max(1, keepdims=True))
    values = exp / exp.sum(1, keepdims=True)
    return (np.log(values) if log else values).reshape(x.shape).astype(np.float32)


@pytest.mark.parametrize(("op", "opset", "inputs", "attrs"), CASES,
                         ids=[f"{op}-opset{opset}-{i}" for i, (op, opset, _, _) in enumerate(CASES)])
def test_each_operator_computes_what_the_onnx_reference_computes(op, opset, inputs, attrs):
    from explorer.models.onnx_import import with_opset_meaning

    if op in ("Softmax", "LogSoftmax") and opset < 13:
        expected = softmax_before_opset_13(inputs[0], attrs.get("axis", 1), op == "LogSoftmax")
    else:
        expected = reference(op, opset, inputs, attrs)
    args = [None if value is None else torch.from_numpy(np.array(value)) for value in inputs]
    ours = OPERATORS[op](args, with_opset_meaning(op, dict(attrs), opset)).numpy()
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_every_operator_the_explorer_runs_is_checked_against_the_reference():
    assert {op for op, *_ in CASES} == set(OPERATORS)
