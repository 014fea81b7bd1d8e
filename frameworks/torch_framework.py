"""PyTorch in the registry."""
from __future__ import annotations

import os

import numpy as np

from common.spec import Spec
from frameworks.base import Framework


class PyTorch(Framework):
    name, title, package = "torch", "PyTorch", "torch_impl"
    requires = ("torch",)

    def book(self):
        import torch_impl
        return torch_impl

    def fast(self):
        import torch_impl.fast
        return torch_impl.fast

    def gpu_available(self) -> bool:
        import torch
        return torch.cuda.is_available()

    def synchronize(self, device: str) -> None:
        if device == "cuda":
            import torch
            torch.cuda.synchronize()

    def configure(self) -> list[str]:
        from common.environment import compile_cache_dir, cpu_key
        # PT: inductor's caches (FX graphs, AOT autograd, compiled code) in the twinbench cache, so a
        # new process loads a compiled epoch instead of compiling it again (read when inductor compiles);
        # one folder per CPU (common.environment.cpu_key): a cache shared by machines never hands one
        # code built for another's vector extensions
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir() / "inductor" / cpu_key()))
        return []

    def versions(self) -> dict:
        import torch
        cuda = torch.cuda.is_available()
        return {"version": torch.__version__, "cuda": torch.version.cuda,
                "gpu": torch.cuda.get_device_name(0) if cuda else None,
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if cuda else None, **self.threads()}

    def threads(self) -> dict:
        import torch
        return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}

    def set_threads(self, n: int) -> str | None:
        import torch
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError as exc:  # PT: fixed once parallel work has started
            return str(exc).splitlines()[0]
        return None

    def pin_numerics(self) -> list[str]:
        import torch
        message = self.set_threads(1)
        torch.backends.cuda.matmul.allow_tf32 = False  # PT: TF32 matmuls carry a 10-bit mantissa
        torch.backends.cudnn.allow_tf32 = False
        return [message] if message else []

    def numerics(self) -> dict:
        import torch
        return {"torch threads (intra/interop)": (torch.get_num_threads(), torch.get_num_interop_threads()),
                "torch allow_tf32 (matmul/cudnn)": (torch.backends.cuda.matmul.allow_tf32,
                                                    torch.backends.cudnn.allow_tf32)}

    GPU_DEFAULTS = {"tf32": False, "deterministic": False}  # PT: matmuls in full float32 unless asked

    def set_gpu_numerics(self, tf32: bool, deterministic: bool) -> None:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        # PT: cuBLAS needs a fixed workspace for deterministic results (read when its handle is made)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8") if deterministic else None
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.backends.cudnn.deterministic = deterministic

    def logits(self, model, spec: Spec, x: np.ndarray) -> np.ndarray:
        import torch
        from torch_impl.training import as_inputs
        model.eval()
        with torch.no_grad():
            return model(as_inputs(spec, x, getattr(model, "device", "cpu"))).cpu().numpy()

    def _traced(self, model, spec: Spec, name: str, u: np.ndarray, y: np.ndarray, g=None):
        import torch
        from torch_impl.losses import SpecLoss, one_hot
        book = self.book()
        kept = book.get_weights(model)  # PT: a BatchNorm1d call in training mode moves its statistics
        model.train()
        uu = torch.as_tensor(np.asarray(u, spec.training.dtype)).requires_grad_()
        if name == "loss":
            out, params = SpecLoss(spec)(one_hot(spec, y), uu), {}
        else:
            layer = model.get_submodule(name)
            out = layer(uu.reshape(len(uu), -1) if name == "hidden" else uu)
            canonical = {"weight": "gamma" if name == "bn" else "kernel", "bias": "beta" if name == "bn" else "bias"}
            params = {f"{name}/{canonical[n]}": p for n, p in layer.named_parameters()}
        if g is None:
            book.set_weights(model, kept)
            return out.detach().numpy(), None
        grads = torch.autograd.grad(out, [uu, *params.values()], torch.as_tensor(np.asarray(g), dtype=out.dtype))
        book.set_weights(model, kept)
        # PT: nn.Linear's weight is (out, in); canonical kernels are (in, out)
        named = {n: (d.T if n.endswith("kernel") else d).numpy() for n, d in zip(params, grads[1:])}
        return grads[0].numpy(), named

    def layer_forward(self, model, spec: Spec, name: str, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._traced(model, spec, name, u, y)[0]

    def layer_vjp(self, model, spec: Spec, name: str, u: np.ndarray, g, y: np.ndarray) -> tuple[np.ndarray, dict]:
        return self._traced(model, spec, name, u, y, g)

    def use_optimizer(self, model, spec: Spec, make) -> None:
        from common.canonical import trainable_names
        from torch_impl.optimizers import make_optimizer
        # PT: the optimizer holds the parameters, so a replaced layer needs a new one too
        named = dict(zip(trainable_names(spec), model.parameters()))  # parameters() are in layer order
        model.optimizer = make(model) if make else make_optimizer(spec, named)
