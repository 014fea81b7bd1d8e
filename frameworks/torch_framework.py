"""PyTorch in the registry."""
from __future__ import annotations

import numpy as np

from common.spec import Spec
from frameworks.base import Framework


class PyTorch(Framework):
    name, title, package = "torch", "PyTorch", "torch_impl"

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

    def logits(self, model, spec: Spec, x: np.ndarray) -> np.ndarray:
        import torch
        x = np.asarray(x, dtype=spec.training.dtype).reshape(-1, 28, 28)
        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(x, device=next(model.parameters()).device)).cpu().numpy()

    def use_optimizer(self, model, spec: Spec, make) -> None:
        from common.canonical import trainable_names
        from torch_impl.optimizers import make_optimizer
        # PT: the optimizer holds the parameters, so a replaced layer needs a new one too
        named = dict(zip(trainable_names(spec), model.parameters()))  # parameters() are in layer order
        model.optimizer = make(model) if make else make_optimizer(spec, named)
