"""Silero v5's ONNX graph specialised for one 16 kHz stream: the same nodes, the same weights, fewer of them run.

Silero's exported graph takes the sample rate as an input and branches on it (an ``If`` whose two subgraphs
hold the 16 kHz and the 8 kHz model), and its input and state have free batch and length dimensions, so the
LSTM's state handling is a dozen more ``If``\\ s on shapes (squeeze the batch dimension if it is 1, …). With
those left to run time, onnxruntime executes ~210 nodes a window; told that the rate is 16 kHz and the shapes
are ``input [1, 576]`` and ``state [2, 1, 128]``, its own constant folding leaves ~30, and a window costs about a
fifth less CPU (docs/performance.md, "Silero per window"). The arithmetic nodes are untouched, so the
scores are the same (the rewrite is checked against the original graph when the process loads it:
:func:`voxline.processors.silero_model.shared_session`).

The rewrite works on the model file's protobuf encoding directly (the ``onnx`` package is not a dependency):

* the top-level ``If`` whose condition is ``Equal(sr, 16000)`` is replaced by its ``then_branch``'s nodes, and
  two ``Identity`` nodes give the branch's outputs the ``If``'s output names;
* the ``sr`` input goes; ``input`` and ``state`` get fixed dimensions.

(Making ``sr`` a constant and leaving the ``If`` to onnxruntime's folding fails in onnxruntime 1.32: it cannot
inline the nested ``If``\\ s. Hence the explicit inlining.) Anything not as expected raises :class:`ValueError`,
and the caller keeps the original graph.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["specialise_16k"]

RATE = 16000

# Field numbers in onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto,
# TypeProto, TypeProto.Tensor, TensorShapeProto, TensorShapeProto.Dimension).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 11, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTR_NAME, _ATTR_TENSOR, _ATTR_GRAPH = 1, 5, 6
_TENSOR_DATA_TYPE, _TENSOR_INT64_DATA, _TENSOR_RAW_DATA = 2, 7, 9
_INT64 = 7
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_ELEM_TYPE, _TENSOR_SHAPE, _SHAPE_DIM, _DIM_VALUE = 1, 1, 2, 1, 1
_FLOAT = 1

_Field = tuple[int, int, "int | bytes", bytes]  # field number, wire type, value (varint) or payload, raw bytes


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[_Field]:
    """A message's fields in order."""
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated protobuf message")
        yield number, wire, value, data[start:pos]


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _message(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _strings(data: bytes, number: int) -> list[str]:
    return [v.decode() for n, w, v, _ in _fields(data) if n == number and w == 2 and isinstance(v, bytes)]


def _submessages(data: bytes, number: int) -> list[bytes]:
    return [v for n, w, v, _ in _fields(data) if n == number and w == 2 and isinstance(v, bytes)]


def _attribute(node: bytes, name: str) -> bytes | None:
    for attribute in _submessages(node, _NODE_ATTRIBUTE):
        if _strings(attribute, _ATTR_NAME) == [name]:
            return attribute
    return None


def _scalar_int64(node: bytes) -> int | None:
    """The value of a ``Constant`` node holding one int64, else ``None``."""
    attribute = _attribute(node, "value")
    tensors = [] if attribute is None else _submessages(attribute, _ATTR_TENSOR)
    if len(tensors) != 1:
        return None
    values: list[int] = []
    data_type = None
    for number, _, value, _ in _fields(tensors[0]):
        if number == _TENSOR_DATA_TYPE and isinstance(value, int):
            data_type = value
        elif number == _TENSOR_INT64_DATA and isinstance(value, int):
            values.append(value)
        elif number == _TENSOR_INT64_DATA and isinstance(value, bytes):  # packed
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                values.append(item)
        elif number == _TENSOR_RAW_DATA and isinstance(value, bytes) and len(value) == 8:
            values.append(int.from_bytes(value, "little", signed=True))
    return values[0] if data_type == _INT64 and len(values) == 1 else None


def _node(op: str, inputs: list[str], outputs: list[str], name: str) -> bytes:
    return (
        b"".join(_message(_NODE_INPUT, i.encode()) for i in inputs)
        + b"".join(_message(_NODE_OUTPUT, o.encode()) for o in outputs)
        + _message(_NODE_NAME, name.encode())
        + _message(_NODE_OP, op.encode())
    )


def _float_input(name: str, dims: tuple[int, ...]) -> bytes:
    shape = b"".join(_message(_SHAPE_DIM, _encode_varint(_DIM_VALUE << 3) + _encode_varint(d)) for d in dims)
    tensor = _encode_varint(_TENSOR_ELEM_TYPE << 3) + _encode_varint(_FLOAT) + _message(_TENSOR_SHAPE, shape)
    return _message(_VALUE_NAME, name.encode()) + _message(_VALUE_TYPE, _message(_TYPE_TENSOR, tensor))


def _specialise_graph(graph: bytes, shapes: dict[str, tuple[int, ...]]) -> bytes:
    nodes = _submessages(graph, _GRAPH_NODE)
    by_output = {output: node for node in nodes for output in _strings(node, _NODE_OUTPUT)}
    branch = None
    for node in nodes:
        if _strings(node, _NODE_OP) != ["If"]:
            continue
        condition = by_output.get(next(iter(_strings(node, _NODE_INPUT)), ""))
        if condition is None or _strings(condition, _NODE_OP) != ["Equal"]:
            continue
        operands = _strings(condition, _NODE_INPUT)
        if "sr" not in operands or len(operands) != 2:
            continue
        constant = by_output.get(operands[1 - operands.index("sr")])
        if constant is None or _strings(constant, _NODE_OP) != ["Constant"] or _scalar_int64(constant) != RATE:
            continue
        then = _attribute(node, "then_branch")
        if then is None or len(graphs := _submessages(then, _ATTR_GRAPH)) != 1:
            raise ValueError("the sample-rate If has no then_branch graph")
        branch = (nodes.index(node), nodes.index(condition), nodes.index(constant), graphs[0])
        break
    if branch is None:
        raise ValueError("no If on Equal(sr, 16000) at the top of the graph")
    if_index, condition_index, constant_index, subgraph = branch
    if_node, condition = nodes[if_index], nodes[condition_index]
    if any(n not in (1, 2, 12) for n, *_ in _fields(subgraph)):  # nodes, name, outputs: no initializers etc.
        raise ValueError("the 16 kHz branch holds more than nodes")
    branch_outputs = [_strings(v, _VALUE_NAME)[0] for v in _submessages(subgraph, _GRAPH_OUTPUT)]
    if_outputs = _strings(if_node, _NODE_OUTPUT)
    if len(branch_outputs) != len(if_outputs):
        raise ValueError("the 16 kHz branch's outputs do not match the If's")
    inlined = _submessages(subgraph, _GRAPH_NODE) + [
        _node("Identity", [inner], [outer], f"silero_16k_output_{i}")
        for i, (inner, outer) in enumerate(zip(branch_outputs, if_outputs, strict=True))
    ]
    users = [n for i, n in enumerate(nodes) if i not in (if_index, condition_index, constant_index)]
    if any(o in _strings(n, _NODE_INPUT) for n in users for o in _strings(condition, _NODE_OUTPUT)):
        raise ValueError("the sample-rate condition is used elsewhere")

    out = bytearray()
    seen_inputs: set[str] = set()
    index = -1
    for number, _, value, raw in _fields(graph):
        if number == _GRAPH_NODE:
            index += 1
            if index == if_index:
                out += b"".join(_message(_GRAPH_NODE, n) for n in inlined)
            elif index not in (condition_index, constant_index):
                out += raw
        elif number == _GRAPH_INPUT and isinstance(value, bytes):
            name = _strings(value, _VALUE_NAME)[0]
            seen_inputs.add(name)
            if name in shapes:
                out += _message(_GRAPH_INPUT, _float_input(name, shapes[name]))
            elif name != "sr":
                out += raw
        else:
            out += raw
    if seen_inputs != {"input", "state", "sr"}:
        raise ValueError(f"unexpected inputs {sorted(seen_inputs)}")
    return bytes(out)


def specialise_16k(model: bytes, window: int, context: int, batch: int = 1) -> bytes:
    """The Silero v5 ONNX ``model`` (the file's bytes) at 16 kHz, ``context + window`` samples a call for each of
    ``batch`` streams (one, on the server; more only in tests/bench/bench_silero.py); raises :class:`ValueError`
    if the graph is not laid out as expected."""
    shapes = {"input": (batch, context + window), "state": (2, batch, 128)}
    out = bytearray()
    graphs = 0
    for number, _, value, raw in _fields(model):
        if number == _MODEL_GRAPH and isinstance(value, bytes):
            out += _message(_MODEL_GRAPH, _specialise_graph(value, shapes))
            graphs += 1
        else:
            out += raw
    if graphs != 1:
        raise ValueError("no graph in the model")
    return bytes(out)
