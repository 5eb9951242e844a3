"""One name per idea across the public API: counts are ``n_*``, seeds are ``seed``.

Pyro's ``num_samples`` and scikit-learn's ``random_state`` may appear where the library calls
them, never as a parameter of ours."""

import importlib
import inspect
import pkgutil
import re

import pyro_latent

FORBIDDEN = re.compile(r"^(num_\w+|random_state)$")


def _public_callables():
    for info in pkgutil.walk_packages(pyro_latent.__path__, prefix="pyro_latent."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj.__init__
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{module.__name__}.{name}.{attr}", member


def _offending_parameters():
    for where, fn in _public_callables():
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        for p in params:
            if FORBIDDEN.match(p):
                yield f"{where}({p})"


def test_no_public_parameter_is_named_num_or_random_state():
    assert list(_offending_parameters()) == []


def test_the_check_sees_parameters(monkeypatch):
    def helper(num_samples, random_state=0):
        return num_samples, random_state

    helper.__module__ = "pyro_latent.core.checks"
    monkeypatch.setattr("pyro_latent.core.checks.helper", helper, raising=False)
    assert sorted(_offending_parameters()) == [
        "pyro_latent.core.checks.helper(num_samples)",
        "pyro_latent.core.checks.helper(random_state)",
    ]
