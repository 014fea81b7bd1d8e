"""twinbench common: the shared spec, presets, data and float64 reference."""
from common.config import SpecError, load_spec, preset_names, spec_from_dict, spec_to_dict
from common.spec import Spec


def load_mnist(standardize: bool = True, dtype: str = "float32", **kwargs):
    """The real MNIST as numpy arrays; see common.data.load_mnist."""
    from common.data import load_mnist as _load
    return _load(standardize=standardize, dtype=dtype, **kwargs)


__all__ = ["Spec", "SpecError", "load_spec", "load_mnist", "preset_names",
           "spec_from_dict", "spec_to_dict"]
