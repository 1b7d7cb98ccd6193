"""Trace a model by running it once on the meta device and recording each pre-dispatch ATen op.

The parameters, buffers and inputs are replaced by meta tensors (shapes, no data), and a
dispatch mode at torch's PreDispatch key writes every op into an fx graph in the vocabulary
torch.export and make_fx(pre_dispatch=True) use (aten.linear, aten.conv2d, aten.view, ...), with
module paths from global forward hooks. Nothing is computed, nothing is faked and no graph
passes run, and an op repeated on the same input layouts (block after block) reuses the layout
of its first result instead of running its meta kernel again (many are Python decompositions),
so on ViT-B/16 this costs less than one plain meta forward and a tenth of torch.export. It
refuses what a meta tensor cannot do (a value read in Python: data-dependent control flow,
`.item()`, `.tolist()`), so `trace("auto")` then falls back to torch.export. See
docs/design/graph.md.
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable

import torch
from torch import fx, nn
from torch._dispatch.python import enable_python_dispatcher
from torch.fx.experimental.proxy_tensor import ProxyTorchDispatchMode
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode, _pop_mode, _push_mode
from torch.utils.weak import WeakTensorKeyDictionary

from ..inputs import output_tensors

_PRE_DISPATCH = torch._C.DispatchKey.PreDispatch


class _Recorder(ProxyTorchDispatchMode):
    """A dispatch mode at the PreDispatch key that records ops (torch only accepts proxy,
    functional or schema-check modes there, hence the base class; none of its tracing machinery
    is used: `__init__` and `__torch_dispatch__` are this class's own)."""

    def __init__(self, device: torch.device):
        TorchDispatchMode.__init__(self, _PRE_DISPATCH)
        self._mode_key = torch._C._TorchDispatchModeKey.PROXY
        self.graph = fx.Graph()
        self.device = device                        # the real device, written where ops name meta
        # tensor -> fx.Node, or (node, index) of a multi-output op; weak keys (see __torch_dispatch__)
        self.nodes = WeakTensorKeyDictionary()
        self.constants: dict[str, torch.Tensor] = {}  # node name -> value of a tensor made outside the trace
        self.names: dict[int, str] = {}             # id(tensor) -> qualified name of a plain tensor attribute
        self.lifted: dict[str, str] = {}            # placeholder -> qualified name of a plain tensor attribute
        self.module_stack: dict[str, tuple[str, str]] = {}
        self.meta_of = WeakTensorKeyDictionary()   # real tensor -> its meta stand-in
        self.layouts: dict[tuple, Any] = {}         # op signature -> layout of its meta result (see _run)

    def placeholder(self, name: str, tensor: torch.Tensor) -> fx.Node:
        node = self.graph.placeholder(name)
        node.meta["val"] = tensor.detach()
        self.nodes[tensor] = node
        return node

    def node_of(self, tensor: torch.Tensor) -> fx.Node:
        node = self.nodes.get(tensor)
        if isinstance(node, tuple):  # an output of a multi-output op: its getitem, made on first use
            source, index = node
            node = self.graph.create_node("call_function", operator.getitem, (source, index))
            node.meta["val"] = tensor.detach()
            node.meta["nn_module_stack"] = source.meta.get("nn_module_stack", {})
            self.nodes[tensor] = node
        elif node is None:  # a tensor made outside the traced ops (a literal, a plain attribute)
            if tensor.device.type == "meta" and tensor.numel():
                raise RuntimeError(f"a {tuple(tensor.shape)} tensor was made from Python data on the meta device "
                                   f"(an index list?), so its values are lost")
            name = self.names.get(id(tensor))
            if name is None:
                node = self.graph.create_node("get_attr", "_tensor_constant")
            else:  # lifted to an input, as torch.export does
                with self.graph.inserting_before(self._first_op()):
                    node = self.graph.placeholder(f"c_{name.replace('.', '_')}")
                self.lifted[node.name] = name
            node.meta["val"] = tensor.detach()
            if tensor.device.type != "meta":
                self.constants[node.name] = tensor
            self.nodes[tensor] = node
        return node

    def _first_op(self) -> fx.Node | None:
        return next((n for n in self.graph.nodes if n.op != "placeholder"), None)

    def _as_meta(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.device.type != "meta":
            node = self.node_of(value)  # recorded as a constant before it is replaced
            if value not in self.meta_of:
                self.meta_of[value] = _on_meta(value)
                self.nodes[self.meta_of[value]] = node
            return self.meta_of[value]
        return value

    def _recorded(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return self.node_of(value)
        if isinstance(value, torch.device) and value.type == "meta":
            return self.device
        return value

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        factory = func._opname.endswith("_like") or not (_any_tensor(args) or _any_tensor(kwargs))
        record_args, record_kwargs = _mapped(self._recorded, args), _mapped(self._recorded, kwargs)
        out = self._run(func, _mapped(self._as_meta, args), _mapped(self._as_meta, kwargs))
        node = self.graph.create_node("call_function", func, record_args, record_kwargs, name=func._opname)
        node.meta["nn_module_stack"] = self.module_stack
        # a factory op's result (torch.zeros, ones_like) must have no other owner when torch's
        # variable wrapper receives it, or it is replaced by a copy the trace would not know: its
        # node keeps a detached alias
        keep = (lambda v: v.detach()) if factory else (lambda v: v)
        if isinstance(out, torch.Tensor):
            node.meta["val"] = keep(out)
            self.nodes[out] = node
        elif isinstance(out, (tuple, list)):
            node.meta["val"] = type(out)(keep(v) if isinstance(v, torch.Tensor) else v for v in out)
            for i, value in enumerate(out):
                if isinstance(value, torch.Tensor):
                    self.nodes[value] = (node, i)
        else:
            node.meta["val"] = out
        return out


    def _run(self, func, args: tuple, kwargs: dict) -> Any:
        """The op's result on meta tensors. Many meta kernels are Python decompositions (layer
        norm, GELU, attention: most of a ViT's trace time), and a model repeats the same op on
        the same shapes block after block; a functional op's meta result depends only on its
        inputs' shapes, strides, dtypes and plain arguments, so repeats get fresh empty tensors
        of the remembered layout instead of running the kernel again."""
        key = _signature(func, args, kwargs) if _functional(func) else None
        layout = self.layouts.get(key) if key is not None else None
        if layout is not None:
            return _made(layout)
        with torch._C._DisablePythonDispatcher():
            out = func(*args, **kwargs)
        if key is not None:
            layout = _layout(out)
            if layout is not None:
                self.layouts[key] = layout
        return out


_FUNCTIONAL: dict[Any, bool] = {}


def _functional(func) -> bool:
    """An op that neither writes its inputs nor returns a view of them."""
    known = _FUNCTIONAL.get(func)
    if known is None:
        schema = func._schema
        known = _FUNCTIONAL[func] = not schema.is_mutable and all(r.alias_info is None for r in schema.returns)
    return known


def _signature(func, args: tuple, kwargs: dict) -> tuple | None:
    """A hashable key of the op and its inputs' metadata; None where an argument has none."""
    try:
        key = (func, _metadata(args), _metadata(tuple(sorted(kwargs.items()))))
        hash(key)
    except TypeError:
        return None
    return key


def _metadata(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.stride(), value.dtype, value.device.type)
    if isinstance(value, (tuple, list)):
        return tuple(_metadata(v) for v in value)
    return value


def _layout(out: Any):
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), out.stride(), out.dtype) if out.device.type == "meta" else None
    if isinstance(out, (tuple, list)) and out and all(isinstance(v, torch.Tensor) for v in out):
        layouts = [_layout(v) for v in out]
        return (type(out), layouts) if all(layouts) else None
    return None


def _made(layout):
    if isinstance(layout[0], type):
        kind, layouts = layout
        return kind(_made(one) for one in layouts)
    size, stride, dtype = layout
    return torch.empty_strided(size, stride, dtype=dtype, device="meta")


def _mapped(fn, value: Any) -> Any:
    """`value` with fn applied to every tensor and device in it (op arguments: tuples, lists and
    dicts of tensors and plain values)."""
    if isinstance(value, (torch.Tensor, torch.device)):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_mapped(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: _mapped(fn, v) for k, v in value.items()}
    return value


def _any_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_any_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_any_tensor(v) for v in value.values())
    return False


class ModuleStack:
    """Keeps the module stack (path, class) while the model runs, as torch.export's
    nn_module_stack has it, and hands each new state to `publish` (a new dict per change, so
    nodes recorded under one state share it). Global forward hooks; removed on exit."""

    def __init__(self, model: nn.Module, publish: Callable[[dict], None]):
        self.names = {id(module): name for name, module in model.named_modules() if name}
        self.publish = publish
        self.stack: list[tuple[str, str]] = []

    def _publish(self) -> None:
        self.publish({str(i): entry for i, entry in enumerate(self.stack)})

    def _enter(self, module, inputs) -> None:
        name = self.names.get(id(module))
        if name is not None:
            self.stack.append((name, type(module).__qualname__))
            self._publish()

    def _leave(self, module, inputs, output) -> None:
        if self.names.get(id(module)) is not None and self.stack:
            self.stack.pop()
            self._publish()

    def __enter__(self):
        self._hooks = [register_module_forward_pre_hook(self._enter), register_module_forward_hook(self._leave)]
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()


@contextlib.contextmanager
def _seen_as_export():
    """Model code asks `torch.compiler.is_compiling()` / `is_exporting()` to choose the path a
    trace can follow (no `.item()`, no data-dependent shortcuts: Hugging Face's mask builders);
    the flags say so while the meta trace runs, as torch.export sets them, so both trace one path."""
    compiling, exporting = torch.compiler._is_compiling_flag, torch.compiler._is_exporting_flag
    torch.compiler._is_compiling_flag = torch.compiler._is_exporting_flag = True
    try:
        yield
    finally:
        torch.compiler._is_compiling_flag, torch.compiler._is_exporting_flag = compiling, exporting


def _on_meta(tensor: torch.Tensor) -> torch.Tensor:
    """A meta tensor of the same layout and dtype, outside autograd (a parameter's stand-in would
    otherwise make every op on it build autograd state: a quarter of a ViT's trace)."""
    return torch.empty_strided(tuple(tensor.shape), tensor.stride(), dtype=tensor.dtype, device="meta")


def plain_tensor_attributes(model: nn.Module) -> dict[int, str]:
    """id -> qualified name of tensors that modules hold as plain attributes (neither parameter
    nor buffer): torch.export lifts them as constants, and so does this trace."""
    out = {}
    for prefix, module in model.named_modules():
        for key, value in vars(module).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                out.setdefault(id(value), f"{prefix}.{key}" if prefix else key)
    return out


def trace_on_meta(model: nn.Module, args: tuple, kwargs: dict):
    """(fx graph, placeholder -> tensor name, parameter names, user input placeholders,
    constant names, node -> constant value): what trace.py's TracedModel is made of."""
    parameters = dict(model.named_parameters())
    state = {**parameters, **dict(model.named_buffers())}
    devices = {t.device for t in state.values()} | {t.device for t in pytree.tree_leaves((args, kwargs))
                                                    if isinstance(t, torch.Tensor)}
    recorder = _Recorder(devices.pop() if len(devices) == 1 else torch.device("cpu"))
    recorder.names = plain_tensor_attributes(model)
    tensors: dict[str, str] = {}
    meta_state = {}
    for name, tensor in state.items():
        prefix = "p" if name in parameters else "b"
        meta_state[name] = _on_meta(tensor)
        tensors[recorder.placeholder(f"{prefix}_{name.replace('.', '_')}", meta_state[name]).name] = name
    flat, spec = pytree.tree_flatten((args, kwargs))
    meta_flat, user_inputs = [], []
    for i, value in enumerate(flat):
        if isinstance(value, torch.Tensor):
            value = _on_meta(value)
            user_inputs.append(recorder.placeholder(f"arg{i}", value).name)
        meta_flat.append(value)
    call_args, call_kwargs = pytree.tree_unflatten(meta_flat, spec)
    with ModuleStack(model, lambda stack: setattr(recorder, "module_stack", stack)), _seen_as_export(), \
            enable_python_dispatcher():
        _push_mode(recorder)
        try:
            output = torch.func.functional_call(model, meta_state, call_args, call_kwargs)
        finally:
            _pop_mode(_PRE_DISPATCH)
    recorder.module_stack = {}
    recorder.graph.output(tuple(recorder.node_of(t) for t in output_tensors(output)))
    tensors.update(recorder.lifted)
    return recorder.graph, tensors, set(parameters), user_inputs, set(recorder.lifted.values()), recorder.constants
