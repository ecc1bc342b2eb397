"""The architecture language: networks written the way the seeds write them down.

A spec is a string of layer tokens (case-insensitive; ``->`` and ``,`` between tokens are
ignored, so the seeds' ``CONV5-16 -> POOL2 -> FC-10`` parses) or a YAML list whose items are
tokens or mappings ``{type: KIND, key: value...}``::

    conv5-16p2 relu pool2 conv5-20p2 relu pool2 conv5-20p2 relu pool2 fc10
    [{type: conv, filters: 16, kernel: 5, padding: 2}, relu, pool2, ..., fc10]

Grammar (one token per layer; the full table with keys is in docs/models.md):

    conv<F>-<N>[s<S>][p<P>]     N filters of F x F, stride S (1), zero padding P (0)
    fc[<N>]                      fully connected, N units; bare ``fc`` = number of classes
    [max|avg]pool<F>[s<S>][p<P>][:floor|:ceil]   F x F pooling, stride S (= F)
    gap  flatten                 global average pool, flatten
    bn[:frozen][:eps<e>][:m<m>]  batch normalisation; frozen: scale fixed at 1 (not trained)
    relu tanh sigmoid arctan softplus gelu prelu lrelu[<slope>] elu[<alpha>]
    scale<f>                     multiply by the constant f (airbench's logit scale 1/9)
    maxout[<K>]                  K pieces (2); the conv/fc before it counts maxout *units*
    keep<p>[:mode]  drop<q>[:mode]   dropout with keep prob p or drop prob q; mode inverted|classic
    softmax                      output marker (the softmax is applied by the loss)
    res( ... )                   residual block, y = x + body(x)
    lstm<N>[:all]  gru<N>[:all]  recurrent layer over the image's rows (time steps; columns x
                                 channels are the features), N units; the last hidden state
                                 (an N-vector) or all of them (a 1 x rows x N volume)

``parse_spec`` turns either form into a list of :class:`LayerSpec`; ``format_spec`` writes the
canonical string back (the two round-trip).

A layer kind is one :class:`LayerKind` entry of :data:`LAYERS`: its grammar, parameters, role,
summary row and gradcheck cases; ``LINEAR_KINDS``, ``ACTIVATION_KINDS``, ``STAGE_KINDS`` and
``LAYER_CHECKS`` are derived from the entries. Only its builder lives elsewhere
(``build.BUILDERS``, under the same name): this module is torch-free on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cnnlab.errors import ConfigError
from cnnlab.registry import Registry, closest


class SpecError(ConfigError):
    """An architecture spec that does not parse, or whose shapes do not work out."""


class Params(BaseModel):
    """Keyword arguments of one layer kind; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class ConvParams(Params):
    filters: int = Field(gt=0, description="output feature maps (maxout: units)")
    kernel: int = Field(gt=0, description="receptive field F (F x F)")
    stride: int = Field(1, gt=0, description="stride S")
    padding: int = Field(0, ge=0, description="zero padding P on each border")


class FcParams(Params):
    units: int | None = Field(None, gt=0, description="outputs; None = number of classes")


class PoolParams(Params):
    size: int = Field(gt=0, description="window F (F x F)")
    stride: int | None = Field(None, gt=0, description="stride S; None = F (non-overlapping)")
    padding: int = Field(0, ge=0, description="implicit padding P")
    op: Literal["max", "avg"] = Field("max", description="max or average")
    round: Literal["strict", "floor", "ceil"] | None = Field(
        None, description="non-integer output size: strict = error, floor/ceil = round; "
                          "None = the network's default (strict for specs, ceil for zoo models)")

    @model_validator(mode="after")
    def _default_stride(self):
        # pool2s2 is pool2: one spelling per layer, so specs compare and round-trip
        if self.stride == self.size:
            object.__setattr__(self, "stride", None)
        return self


class BatchNormParams(Params):
    """``bn``: y = gamma (x - mu) / sqrt(var + eps) + beta (Ioffe & Szegedy 2015), per channel.

    ``momentum`` is torch's: the weight of the new batch statistic in the running averages
    (running = (1 - momentum) running + momentum batch); airbench94's "momentum 0.6" is
    torch's 0.4. ``frozen``: gamma stays 1 and is not trained (airbench94); beta still trains."""

    frozen: bool = Field(False, description="scale gamma fixed at 1, not trained")
    eps: float = Field(1e-5, gt=0, description="epsilon in sqrt(var + eps)")
    momentum: float = Field(0.1, gt=0, le=1, description="weight of the batch statistic in the running averages")


class ScaleParams(Params):
    factor: float = Field(gt=0, description="constant f in y = f x")


class SlopeParams(Params):
    slope: float = Field(0.01, ge=0, description="negative slope a in f(x) = max(a x, x)")


class EluParams(Params):
    alpha: float = Field(1.0, gt=0, description="alpha in f(x) = alpha (e^x - 1) for x < 0")


class MaxoutParams(Params):
    pieces: int = Field(2, gt=0, description="linear pieces per unit k")


class DropoutParams(Params):
    keep: float | None = Field(None, gt=0, le=1, description="probability of keeping a unit")
    drop: float | None = Field(None, ge=0, lt=1, description="probability of dropping a unit")
    mode: Literal["inverted", "classic"] | None = Field(
        None, description="inverted (scale 1/p in training) or classic (scale p at test); "
                          "None = model.dropout_mode")

    @model_validator(mode="after")
    def _one_probability(self):
        if (self.keep is None) == (self.drop is None):
            raise ValueError("give exactly one of 'keep' (probability of keeping a unit) "
                             "or 'drop' (probability of dropping it)")
        return self

    @property
    def keep_prob(self) -> float:
        return self.keep if self.keep is not None else 1.0 - self.drop


class RecurrentParams(Params):
    units: int = Field(gt=0, description="hidden units N (the state's size)")
    states: Literal["last", "all"] = Field(
        "last", description="last: the final hidden state (an N-vector); all: every step's state, "
                            "a 1 x T x N volume (rows = time steps), e.g. for a second recurrent layer")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a spec: its kind, validated parameters and (for ``res``) a body."""

    kind: str
    params: Params = field(default_factory=NoParams)
    body: tuple["LayerSpec", ...] = ()

    @property
    def token(self) -> str:
        return LAYERS.get(self.kind).to_token(self)

    def to_data(self) -> str | dict:
        """The YAML form: the token string (mappings only for blocks)."""
        if self.kind == "res":
            return {"type": "res", "layers": [s.to_data() for s in self.body]}
        return self.token


#: What a layer kind does to the signal, for code that treats kinds alike (the builder's
#: init and maxout rules, summaries, docs). Every kind has one role.
ROLES: dict[str, str] = {
    "linear": "multiplies its input by a learned weight matrix (conv, fc); takes an init scheme",
    "activation": "an element-wise nonlinearity f(x): one output per input unit",
    "feature_pooling": "max over groups of K consecutive features (maxout; Lasagne's FeaturePoolLayer): "
                       "a nonlinearity that divides the depth by K",
    "pooling": "summarises spatial windows (pool) or the whole volume (gap)",
    "reshape": "rearranges the values without computing (flatten)",
    "normalization": "normalises each feature with batch statistics (bn)",
    "scaling": "multiplies the signal by a fixed constant (scale)",
    "regularization": "changes the signal in training only (dropout)",
    "output": "marks the network's output; the loss applies it (softmax)",
    "block": "a body of layers with a skip connection (res)",
    "recurrent": "reads the volume row by row as a sequence, carrying a hidden state (lstm, gru); "
                 "keeps torch's own init",
}

#: How a kind shows in ``cnnlab summary``'s table (seeds/000 figures 1.1 and 2.2): ``row``
#: starts a row of its own; ``fold`` is written into the ``activation`` column of the row above.
SUMMARY_RULES = ("row", "fold")


class GradcheckCase(NamedTuple):
    """One case of ``cnnlab gradcheck``: a spec fragment exercising a kind, and its small input."""

    spec: str
    input_shape: tuple[int, ...]  # (C, H, W) volume or (N,) vector


@dataclass(frozen=True)
class LayerKind:
    """One kind of layer, as plain data: how it is written (a token pattern, its parameters
    and back), its role, its place in summary tables and its gradient checks.

    Adding a kind is one ``_kind(...)`` entry below plus its builder, registered under the
    same name in ``cnnlab.models.build.BUILDERS``. The builder (module and output-shape rule)
    lives there because it needs torch, and this module must stay torch-free: config
    validation parses specs and never imports torch."""

    name: str
    params: type[Params]
    pattern: str  # a regular expression matched against the whole lower-cased token
    from_match: Callable[[re.Match], dict]
    to_token: Callable[[LayerSpec], str]
    syntax: str  # shown in error messages
    role: str  # a key of ROLES
    summary: str  # one of SUMMARY_RULES
    checks: tuple[GradcheckCase, ...]  # run by `cnnlab gradcheck`; each spec contains this kind

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"layer kind '{self.name}': role '{self.role}' is not one of {', '.join(ROLES)}")
        if self.summary not in SUMMARY_RULES:
            raise ValueError(f"layer kind '{self.name}': summary '{self.summary}' is not one of "
                             f"{', '.join(SUMMARY_RULES)}")
        if not self.checks:
            raise ValueError(f"layer kind '{self.name}' needs at least one gradcheck case")


LAYERS: Registry[LayerKind] = Registry("layer")
#: Every kind once (LAYERS also maps aliases), in registration order: the order of the
#: derived tuples below and of ``cnnlab gradcheck``'s checks.
KINDS: list[LayerKind] = []


def _num(x: float) -> str:
    return f"{x:g}"


def _opt(prefix: str, value: Any, default: Any) -> str:
    return "" if value == default or value is None else f"{prefix}{value}"


def _kind(name: str, params: type[Params], pattern: str, from_match, to_token, syntax: str, *,
          role: str, summary: str, checks: list[tuple[str, tuple[int, ...]]],
          aliases: tuple[str, ...] = ()) -> None:
    kind = LayerKind(name, params, pattern, from_match, to_token, syntax, role, summary,
                     tuple(GradcheckCase(spec, shape) for spec, shape in checks))
    LAYERS.register(name, *aliases)(kind)
    KINDS.append(kind)


def _plain(name: str, *, role: str, summary: str, checks: list, aliases: tuple[str, ...] = ()) -> None:
    """A kind without parameters: the token is its name (or an alias)."""
    _kind(name, NoParams, "|".join((name, *aliases)), lambda m: {}, lambda s: s.kind, name,
          role=role, summary=summary, checks=checks, aliases=aliases)


def _conv_groups(m: re.Match) -> dict:
    out = {"kernel": int(m[1]), "filters": int(m[2])}
    for key, value in re.findall(r"([sp])(\d+)", m[3] or ""):
        out["stride" if key == "s" else "padding"] = int(value)
    return out


_kind("conv", ConvParams, r"conv(\d+)-(\d+)((?:[sp]\d+)*)", _conv_groups,
      lambda s: f"conv{s.params.kernel}-{s.params.filters}{_opt('s', s.params.stride, 1)}"
                f"{_opt('p', s.params.padding, 0)}",
      "conv<F>-<N>[s<S>][p<P>]",
      role="linear", summary="row", checks=[("conv3-4", (2, 6, 6)), ("conv3-3s2p1", (2, 7, 7))])
_kind("fc", FcParams, r"fc-?(\d+)?", lambda m: {"units": int(m[1])} if m[1] else {},
      lambda s: f"fc{s.params.units or ''}", "fc[<N>]",
      role="linear", summary="row", checks=[("fc5", (2, 3, 3)), ("fc4", (6,))])


def _pool_groups(m: re.Match) -> dict:
    out: dict[str, Any] = {"op": m[1] or "max", "size": int(m[2])}
    if m[3]:
        out["stride"] = int(m[3])
    if m[4]:
        out["padding"] = int(m[4])
    if m[5]:
        out["round"] = m[5]
    return out


def _pool_token(s: LayerSpec) -> str:
    p = s.params
    stride = "" if p.stride in (None, p.size) else f"s{p.stride}"
    return (f"{'avg' if p.op == 'avg' else ''}pool{p.size}{stride}{_opt('p', p.padding, 0)}"
            f"{_opt(':', p.round, None)}")


_kind("pool", PoolParams, r"(max|avg)?pool(\d+)(?:s(\d+))?(?:p(\d+))?(?::(strict|floor|ceil))?",
      _pool_groups, _pool_token, "[max|avg]pool<F>[s<S>][p<P>][:floor|:ceil]",
      role="pooling", summary="row",
      checks=[("pool2", (2, 6, 6)), ("pool3s2", (2, 7, 7)), ("pool2:ceil", (2, 5, 5)),
              ("avgpool2", (2, 6, 6)), ("avgpool3s2p1", (2, 7, 7))])
_plain("gap", role="pooling", summary="row", checks=[("gap", (3, 4, 4))])
_plain("flatten", role="reshape", summary="row", checks=[("flatten", (2, 3, 3))])
_NUMBER = r"(\d*\.?\d+(?:e-?\d+)?)"


def _bn_groups(m: re.Match) -> dict:
    out: dict[str, Any] = {"frozen": True} if m[1] else {}
    if m[2]:
        out["eps"] = float(m[2])
    if m[3]:
        out["momentum"] = float(m[3])
    return out


def _bn_token(s: LayerSpec) -> str:
    p = s.params
    return (f"bn{':frozen' if p.frozen else ''}{_opt(':eps', _num(p.eps), '1e-05')}"
            f"{_opt(':m', _num(p.momentum), '0.1')}")


_kind("bn", BatchNormParams, rf"(?:bn|batchnorm)(:frozen)?(?::eps{_NUMBER})?(?::m{_NUMBER})?",
      _bn_groups, _bn_token, "bn[:frozen][:eps<e>][:m<m>]", role="normalization", summary="fold",
      checks=[("bn", (3, 4, 4)), ("bn", (6,)), ("bn:frozen:eps1e-12:m0.4", (3, 4, 4))],
      aliases=("batchnorm",))
_kind("scale", ScaleParams, rf"scale{_NUMBER}", lambda m: {"factor": float(m[1])},
      lambda s: f"scale{_num(s.params.factor)}", "scale<f>", role="scaling", summary="fold",
      checks=[("scale0.5", (2, 3, 3)), ("fc4 scale0.1111", (6,))])
_plain("sigmoid", role="activation", summary="fold", checks=[("sigmoid", (2, 3, 3))], aliases=("logistic",))
_plain("tanh", role="activation", summary="fold", checks=[("tanh", (2, 3, 3))])
_plain("relu", role="activation", summary="fold", checks=[("relu", (2, 3, 3))])
_plain("gelu", role="activation", summary="fold", checks=[("gelu", (2, 3, 3))])
_kind("lrelu", SlopeParams, r"(?:lrelu|leakyrelu)(\d*\.?\d+)?",
      lambda m: {"slope": float(m[1])} if m[1] else {},
      lambda s: f"lrelu{_opt('', _num(s.params.slope), '0.01')}", "lrelu[<slope>]",
      role="activation", summary="fold", checks=[("lrelu0.1", (2, 3, 3))], aliases=("leakyrelu",))
_plain("prelu", role="activation", summary="fold", checks=[("prelu", (2, 3, 3))])
_kind("elu", EluParams, r"elu(\d*\.?\d+)?", lambda m: {"alpha": float(m[1])} if m[1] else {},
      lambda s: f"elu{_opt('', _num(s.params.alpha), '1')}", "elu[<alpha>]",
      role="activation", summary="fold", checks=[("elu", (2, 3, 3))])
_plain("arctan", role="activation", summary="fold", checks=[("arctan", (2, 3, 3))], aliases=("atan",))
_plain("softplus", role="activation", summary="fold", checks=[("softplus", (2, 3, 3))])
# maxout needs a conv or fc before it (that layer counts maxout units): checked behind both
_kind("maxout", MaxoutParams, r"maxout(\d+)?", lambda m: {"pieces": int(m[1])} if m[1] else {},
      lambda s: f"maxout{s.params.pieces}", "maxout[<K>]",
      role="feature_pooling", summary="fold",
      checks=[("conv3-3p1 maxout2", (2, 5, 5)), ("fc4 maxout3", (6,)), ("conv3-2p1 bn maxout2", (2, 5, 5))])


def _dropout_groups(m: re.Match) -> dict:
    out: dict[str, Any] = {m[1]: float(m[2])}
    if m[3]:
        out["mode"] = m[3]
    return out


def _dropout_token(s: LayerSpec) -> str:
    p = s.params
    which = "keep" if p.keep is not None else "drop"
    return f"{which}{_num(getattr(p, which))}{_opt(':', p.mode, None)}"


_kind("dropout", DropoutParams, r"(keep|drop)(\d*\.?\d+)(?::(inverted|classic))?",
      _dropout_groups, _dropout_token, "keep<p>[:inverted|:classic] or drop<q>[...]",
      role="regularization", summary="fold",
      checks=[("keep0.6:inverted", (2, 3, 3)), ("keep0.6:classic", (2, 3, 3)), ("drop0.3:classic", (8,))])
_kind("res", NoParams, r"res", lambda m: {},
      lambda s: f"res({format_spec(s.body)})", "res( ... )",
      role="block", summary="row", checks=[("res(conv3-2p1 bn relu)", (2, 5, 5))])
_plain("softmax", role="output", summary="fold", checks=[("softmax", (5,))])


def _recurrent(name: str, checks: list) -> None:
    _kind(name, RecurrentParams, rf"{name}(\d+)(?::(last|all))?",
          lambda m: {"units": int(m[1]), **({"states": m[2]} if m[2] else {})},
          lambda s: f"{s.kind}{s.params.units}{_opt(':', s.params.states, 'last')}",
          f"{name}<N>[:all]", role="recurrent", summary="row", checks=checks)


_recurrent("lstm", [("lstm3", (2, 4, 3)), ("lstm3:all", (1, 4, 3))])
_recurrent("gru", [("gru3", (2, 4, 3)), ("gru2:all gru3", (1, 4, 3))])


def _names_where(test: Callable[[LayerKind], bool]) -> tuple[str, ...]:
    return tuple(k.name for k in KINDS if test(k))


#: Kinds that multiply their input by a weight matrix (and take an init scheme).
LINEAR_KINDS = _names_where(lambda k: k.role == "linear")
#: Kinds that read the volume's rows as a sequence (lstm, gru).
RECURRENT_KINDS = _names_where(lambda k: k.role == "recurrent")
#: Element-wise nonlinearities (maxout is a nonlinearity too, but its role is feature_pooling:
#: it changes the depth).
ACTIVATION_KINDS = _names_where(lambda k: k.role == "activation")
#: Kinds that start a row of the summary table; the others fold into the row above them.
STAGE_KINDS = _names_where(lambda k: k.summary == "row")
#: What ``cnnlab gradcheck`` checks with no argument: every kind's cases, in kind order.
LAYER_CHECKS: list[GradcheckCase] = [case for k in KINDS for case in k.checks]


def _syntax_list() -> str:
    seen = []
    for name in LAYERS.names():
        syntax = LAYERS.get(name).syntax
        if syntax not in seen:
            seen.append(syntax)
    return ", ".join(seen)


def _params(kind: LayerKind, values: dict, where: str) -> Params:
    try:
        return kind.params.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or kind.name}: {e['msg']}"
            + (f" (valid keys: {', '.join(kind.params.model_fields)})" if e["type"] == "extra_forbidden" else "")
            for e in exc.errors())
        raise SpecError(f"{where}: bad {kind.name} layer: {problems}") from None


def parse_token(token: str, where: str = "spec") -> LayerSpec:
    """One token (``conv5-16p2``) -> :class:`LayerSpec`."""
    text = token.strip().lower()
    for name in LAYERS.names():
        kind = LAYERS.get(name)
        match = re.fullmatch(kind.pattern, text)
        if match:
            return LayerSpec(kind.name, _params(kind, kind.from_match(match), where))
    stem = re.sub(r"[\d.:\-].*$", "", text)
    guess = closest(stem, LAYERS.names())
    hint = f" Did you mean '{guess}' ({LAYERS.get(guess).syntax})?" if guess else ""
    raise SpecError(f"{where}: '{token}' is not a layer.{hint} Layers: {_syntax_list()}")


def _parse_item(item: Any, where: str) -> LayerSpec:
    if isinstance(item, str):
        specs = parse_spec(item, where)
        if len(specs) != 1:
            raise SpecError(f"{where}: '{item}' is {len(specs)} layers; one list item is one layer")
        return specs[0]
    if isinstance(item, dict):
        values = dict(item)
        kind_name = values.pop("type", None)
        if kind_name is None:
            raise SpecError(f"{where}: a layer mapping needs 'type' (one of {', '.join(LAYERS.names())}), "
                            f"got keys {', '.join(map(str, item))}")
        kind = LAYERS.get(str(kind_name).lower()) if str(kind_name).lower() in LAYERS else None
        if kind is None:
            guess = closest(str(kind_name), LAYERS.names())
            raise SpecError(f"{where}: unknown layer type '{kind_name}'."
                            + (f" Did you mean '{guess}'?" if guess else "")
                            + f" Types: {', '.join(LAYERS.names())}")
        if kind.name == "res":
            layers = values.pop("layers", None)
            if not isinstance(layers, list) or values:
                raise SpecError(f"{where}: a res block is {{type: res, layers: [...]}}")
            return LayerSpec("res", NoParams(), tuple(parse_spec(layers, f"{where} > res")))
        return LayerSpec(kind.name, _params(kind, values, where))
    raise SpecError(f"{where}: a layer is a token string or a mapping with 'type', got {item!r}")


_TOKEN = re.compile(r"\(|\)|[^\s(),]+")


def _tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.replace("->", " ")) if t != "->"]


def parse_spec(spec: str | list | tuple, where: str = "spec") -> list[LayerSpec]:
    """A spec string or YAML list -> list of :class:`LayerSpec`. Errors name the token."""
    if isinstance(spec, (list, tuple)):
        specs = [_parse_item(item, f"{where} item {i + 1}") for i, item in enumerate(spec)]
    elif isinstance(spec, str):
        specs, stack = [], []
        for position, token in enumerate(_tokenize(spec), start=1):
            here = f"{where} token {position}"
            if token == "(":
                if not specs or specs[-1].kind != "res" or specs[-1].body:
                    raise SpecError(f"{here}: '(' must follow 'res'")
                stack.append(specs)
                specs = []
            elif token == ")":
                if not stack:
                    raise SpecError(f"{here}: ')' without a matching 'res('")
                body, specs = specs, stack.pop()
                if not body:
                    raise SpecError(f"{here}: empty res( ) block")
                specs[-1] = LayerSpec("res", NoParams(), tuple(body))
            else:
                specs.append(parse_token(token, here))
        if stack:
            raise SpecError(f"{where}: 'res(' is never closed with ')'")
    else:
        raise SpecError(f"{where}: a spec is a string or a list of layers, got {type(spec).__name__}")
    if not specs:
        raise SpecError(f"{where}: empty architecture")
    for spec_ in specs:
        if spec_.kind == "res" and not spec_.body:
            raise SpecError(f"{where}: 'res' needs a body: res( layers... )")
    return specs


def format_spec(specs: list[LayerSpec] | tuple[LayerSpec, ...]) -> str:
    """The canonical string of a spec; ``parse_spec(format_spec(s)) == s``."""
    return " ".join(s.token for s in specs)


def walk(specs) -> list[LayerSpec]:
    """All layers in order, descending into res blocks."""
    out = []
    for s in specs:
        out.append(s)
        out.extend(walk(s.body))
    return out
