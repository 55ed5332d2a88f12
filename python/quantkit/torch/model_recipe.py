"""Recipe files: which scheme each module of a model gets, in the language the
``quantkit quantize`` command reads (``--recipe``).

A :class:`ModelRecipe` is a default scheme, ordered rules ``pattern → scheme``
(``"skip"`` keeps a module in float), and whether embeddings are quantized.
Precedence: the rules in order, then a preset's role rules (when the default is
a preset such as ``q4-mix``), then the default; the first rule whose regular
expression full-matches the module name (or the tensor name, the module name
with ``.weight``) decides. A rule that matches no module is an error unless
``allow_unmatched``.

Scheme names are one vocabulary: every name of ``quantkit schemes`` (``int4-g128``,
``int4-g32-asym:search=mse``, ``fp8-channel``, ``nvfp4``, ...), its aliases
(``W4A16`` is ``int4-g128``), and, in Python only, the recipes that also quantize
activations (:data:`ACTIVATION_RECIPES`: ``W8A8``, ``W8A8-dynamic``, ``8da4w-g32``, ...).
The file is JSON; the C++ parser reads it for both, so both refuse the same mistakes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import _core
from ._spec import args_from_spec
from .recipes import (
    FP8,
    LSQ,
    W8A8,
    Int8DynActInt4Weight,
    Recipe,
    TensorQuant,
    W8A8Dynamic,
)

SKIP = "skip"

#: Recipes that quantize input activations too, by their recipe-file names.
ACTIVATION_RECIPES: dict[str, Callable[[], Recipe]] = {
    "W8A8": W8A8,
    "W8A8-dynamic": W8A8Dynamic,
    "8da4w-g32": lambda: Int8DynActInt4Weight(32),
    "8da4w-g128": lambda: Int8DynActInt4Weight(128),
    "FP8-dynamic": lambda: FP8("row"),
    "FP8-tensor-dynamic": FP8,
    "LSQ-w4a8": lambda: LSQ(4, 8),
}


def recipe_by_name(name: str, embeddings: bool = False) -> Recipe:
    """The :class:`Recipe` a scheme name stands for: an activation recipe, or the
    checkpoint tool's weight scheme of that name (weights only; embedding tables get
    the same rule when ``embeddings``)."""
    if name in ACTIVATION_RECIPES:
        recipe = ACTIVATION_RECIPES[name]()
        weight = recipe.weight
    else:
        canonical, spec = _core.find_scheme(name)
        weight = TensorQuant(args_from_spec(spec))
        recipe = Recipe(canonical, weight)
    return Recipe(recipe.name, recipe.weight, recipe.activation, weight if embeddings else None)


def scheme_name(recipe: Recipe) -> str:
    """The name a recipe has in the shared vocabulary: the weight scheme's table name
    for weight-only recipes (``W4A16()`` is ``int4-g128``), else the recipe's name."""
    if recipe.activation is not None or recipe.weight is None:
        return recipe.name
    try:
        return _core.scheme_name(recipe.weight.spec.spec())
    except ValueError:  # no checkpoint layout for it (e.g. tinygemm): the recipe's own name
        return recipe.name


@dataclass(frozen=True)
class Rule:
    """One rule of a recipe: modules whose name ``pattern`` full-matches get ``recipe``
    (``None``: kept float). ``origin`` names the rule in messages and tables."""

    pattern: str
    recipe: Recipe | None
    origin: str
    counted: bool = True  # a preset's role rules may match nothing without an error


@dataclass(frozen=True)
class ModelRecipe:
    """A default scheme plus ordered rules, as in a recipe file (see the module doc).

    ``scheme`` and each rule's scheme are names (see :func:`recipe_by_name`) or
    :class:`Recipe` objects (those cannot be saved to a file)."""

    scheme: str | Recipe = "int4-g128"
    rules: tuple[tuple[str, str | Recipe], ...] = ()
    embeddings: bool = False
    allow_unmatched: bool = False
    source: str = field(default="", compare=False)

    def resolve(self) -> tuple[Recipe, list[Rule]]:
        """(default recipe, rules in precedence order) with every name looked up."""
        where = f"recipe '{self.source}'" if self.source else "recipe"
        rules = []
        for i, (pattern, scheme) in enumerate(self.rules, 1):
            origin = f"{where} rule {i} '{pattern}'"
            if isinstance(scheme, str) and _core.find_preset(scheme) is not None:
                raise ValueError(f"{origin}: '{scheme}' is a preset; rules name single schemes")
            rules.append(Rule(pattern, self._lookup(scheme, origin), origin))
        default = self.scheme
        preset = _core.find_preset(default) if isinstance(default, str) else None
        if preset is not None:
            default_name, role_rules = preset
            rules += [
                Rule(p, self._lookup(s, f"preset {default}"), f"preset {default}", counted=False)
                for p, s in role_rules
            ]
            default = default_name
        return self._lookup(default, f"{where} scheme"), rules

    def _lookup(self, scheme: str | Recipe, origin: str) -> Recipe | None:
        if isinstance(scheme, Recipe):
            return scheme
        if scheme == SKIP:
            return None
        try:
            return recipe_by_name(scheme, self.embeddings)
        except ValueError as error:
            raise ValueError(f"{origin}: {error}") from None

    def to_json(self) -> str:
        """The recipe file's text (``quantkit quantize --recipe`` reads it)."""
        names = [self.scheme, *(s for _, s in self.rules)]
        if any(isinstance(n, Recipe) for n in names):
            raise ValueError(
                "this recipe holds Recipe objects; a recipe file names its schemes "
                "(quantkit schemes lists them)"
            )
        document = {
            "scheme": self.scheme,
            "embeddings": self.embeddings,
            "rules": [{"match": p, "scheme": s} for p, s in self.rules],
            "allow_unmatched": self.allow_unmatched,
        }
        return json.dumps(document, indent=2) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Writes the recipe file atomically."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.replace(tmp, path)


def load_recipe(path: str | os.PathLike) -> ModelRecipe:
    """Reads a recipe file (the same file ``quantkit quantize --recipe`` reads)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        fields = _core.parse_recipe(f.read(), path)
    return parse_fields(fields, path)


def recipe_from_text(text: str, source: str = "<text>") -> ModelRecipe:
    """A recipe from the text of a recipe file."""
    return parse_fields(_core.parse_recipe(text, source), source)


def parse_fields(fields: dict, source: str) -> ModelRecipe:
    recipe = ModelRecipe(
        scheme=fields["scheme"],
        rules=tuple((p, s) for p, s in fields["rules"]),
        embeddings=fields["embeddings"],
        allow_unmatched=fields["allow_unmatched"],
        source=source,
    )
    recipe.resolve()  # every name checked now, not at the first module it applies to
    return recipe
