"""Graph encodings of the spaces (NB201Space, UNetSpace): exact round trips, directed structure,
rejection of corrupted graphs, space serialisation and constraint parsing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.objective import Constraint, parse_constraints
from ray_diffnas.spaces.graphs import from_dense, graph_edges, make_graph, to_dense
from ray_diffnas.spaces.nb201 import EDGES, OPERATIONS, NB201Arch, NB201Space
from ray_diffnas.spaces.protocol import GraphSpace
from ray_diffnas.spaces.registry import space_from_dict
from ray_diffnas.spaces.unet_space import UNetSpace

REAL_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10_valid.csv"

UNET_SPACES = [
    UNetSpace(image_size=8, num_res_blocks=(1, 2, 3), first_mult_is_one=False, num_heads=(1, 2), dropout=(0.0, 0.2)),
    UNetSpace(
        image_size=16,
        base_channels=(8, 16, 32),
        num_res_blocks=(1, 2, 3),
        first_mult_is_one=False,
        num_heads=(1, 2, 4, 8),
        dropout=(0.0, 0.05, 0.1, 0.3),
    ),
    UNetSpace(
        image_size=32,
        num_res_blocks=(1, 2, 3),
        first_mult_is_one=False,
        attention_max_resolution=16,
        num_heads=(2, 4),
        dropout=(0.1,),
        mid_attention=(False, True),
    ),
]
SPACE_IDS = ["unet8", "unet16", "unet32"]
NB201 = NB201Space()


def two_blocks(space: UNetSpace) -> dict:
    """Two levels, the first with two blocks, attention on the second level and in the bottleneck."""
    return {
        "base_channels": 8,
        "channel_mult": [1, 2],
        "num_res_blocks": [2, 1],
        "attention_resolutions": [space.image_size // 2],
        "num_heads": 2,
        "dropout": space.choices["dropout"][0],
        "mid_attention": True,
    }


def _edges(graph) -> set[tuple[int, int]]:
    return {(s, t) for s, t, _ in graph_edges(graph)}


def _with(graph, x=None, edges=None):
    """A copy of ``graph`` with other node classes and / or ``(source, target, class)`` edges."""
    x = graph.x.tolist() if x is None else x
    edges = sorted(graph_edges(graph)) if edges is None else edges
    return make_graph(x, edges)


# --- exact round trips ------------------------------------------------------------------------


def test_nb201_encode_decode_round_trip_is_exact() -> None:
    space, rng = NB201Space(), np.random.default_rng(0)
    assert isinstance(space, GraphSpace)
    for _ in range(300):
        arch = space.sample(rng)
        graph = space.encode(arch)
        assert int(graph.num_nodes) == space.max_nodes
        decoded = space.decode(graph)
        assert decoded == arch and decoded.to_dict() == arch.to_dict()
        # every accepted input form encodes to the same graph
        for form in (arch.to_string(), {"cell": arch.to_string()}, arch.to_dict()):
            assert space.decode(space.encode(form)) == arch


@pytest.mark.parametrize("space", UNET_SPACES, ids=SPACE_IDS)
def test_unet_encode_decode_round_trip_is_exact(space: UNetSpace) -> None:
    rng = np.random.default_rng(1)
    without_attention = first_mult_above_one = multi_block = 0
    assert isinstance(space, GraphSpace)
    for _ in range(300):
        arch = space.sample(rng)
        graph = space.encode(arch)
        assert int(graph.num_nodes) <= space.max_nodes
        decoded = space.decode(graph)
        assert decoded is not None, arch
        assert decoded.to_dict() == arch.to_dict()  # num_heads and dropout included
        assert decoded.key() == arch.key()
        without_attention += not arch.has_attention
        first_mult_above_one += arch.channel_mult[0] != 1
        multi_block += max(arch.num_res_blocks) > 1
    # the samples covered the interesting cases
    assert without_attention > 10 and first_mult_above_one > 10 and multi_block > 10


@pytest.mark.parametrize("space", UNET_SPACES, ids=SPACE_IDS)
def test_unet_num_heads_round_trips_without_attention(space: UNetSpace) -> None:
    base = space.choices["base_channels"][0]
    for heads in space.choices["num_heads"]:
        for dropout in space.choices["dropout"]:
            arch = space.validate(
                {
                    "base_channels": base,
                    "channel_mult": [1, 2],
                    "num_res_blocks": [1, 1],
                    "attention_resolutions": [],
                    "num_heads": heads,
                    "dropout": dropout,
                    "mid_attention": False,
                }
            )
            assert not arch.has_attention
            decoded = space.decode(space.encode(arch))
            assert decoded.to_dict() == arch.to_dict()
            assert decoded.num_heads == heads and decoded.dropout == dropout


def test_unet_encode_accepts_every_architecture_validate_accepts() -> None:
    space = UNetSpace(image_size=8, num_heads=(1, 2))
    arch = space.validate({**two_blocks(space), "attention_resolutions": [], "mid_attention": False, "num_heads": 4})
    assert space.decode(space.encode(arch)).key() == arch.key()


@pytest.mark.parametrize("dropouts", [(0.0, 1 / 3), (0.1, 0.1000001)], ids=["one-third", "close"])
def test_unet_dropout_round_trips_at_full_precision(dropouts) -> None:
    space = UNetSpace(image_size=8, dropout=dropouts)
    assert len(set(space.node_classes)) == len(space.node_classes)
    arch = space.validate({**two_blocks(space), "dropout": dropouts[1]})
    assert space.decode(space.encode(arch)) == arch


# --- NAS-Bench-201 strings --------------------------------------------------------------------


def _table_strings(count: int, rng: np.random.Generator) -> list[str]:
    """Strings as NAS-Bench-201's own table writes them (strings we made would test nothing new)."""
    if not REAL_TABLE.is_file():
        pytest.skip(f"the NAS-Bench-201 table {REAL_TABLE} is not on this machine")
    with REAL_TABLE.open(newline="") as handle:
        strings = [row["arch"] for row in csv.DictReader(handle)]
    assert len(strings) == len(OPERATIONS) ** len(EDGES)
    return [strings[i] for i in rng.choice(len(strings), count, replace=False)]


def test_nb201_table_strings_round_trip() -> None:
    space = NB201Space()
    for text in _table_strings(300, np.random.default_rng(2)):
        arch = NB201Arch.from_string(text)
        assert arch.to_string() == text and arch.key() == text
        assert space.validate(text) == arch and space.key({"cell": text}) == text
        assert space.decode(space.encode(text)).to_string() == text


def test_nb201_string_edge_order() -> None:
    # edges in string order: into node 1 from 0; into node 2 from 0, 1; into node 3 from 0, 1, 2
    ops = ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none")
    text = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    assert NB201Arch(ops).to_string() == text and NB201Arch.from_string(text).ops == ops


@pytest.mark.parametrize(
    "text, message",
    [
        ("|none~0|+|none~0|none~1|", r"must have 3 '\+'-separated nodes, got 2; e\.g\. '\|nor_conv_3x3~0\|"),
        (
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|none~1|none~2|none~3|",
            "must have 3 '\\+'-separated nodes, got 4",
        ),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "entry 'none~1' of node 1 should read 'none~0'"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "entry 'none' of node 1 should read 'none~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs, got 1"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "node 3 needs 3 inputs, got 4"),
        (42, "must be a str, but got 42"),
    ],
)
def test_nb201_bad_strings_raise_a_helpful_config_error(text, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NB201Arch.from_string(text)


def test_nb201_space_rejects_unknown_operations_and_forms() -> None:
    text = "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(ConfigError, match=r"Operations \['conv_5x5'\] are not in this space; allowed operations"):
        NB201Space().validate(text)
    with pytest.raises(ConfigError, match="not in this space"):
        NB201Space(operations=("none", "skip_connect")).validate({"ops": ["nor_conv_3x3"] + ["none"] * 5})
    with pytest.raises(ConfigError, match="'ops' must be a list of 6 operation names"):
        NB201Space().validate({"ops": ["none"] * 5})
    with pytest.raises(ConfigError, match="must be its string"):
        NB201Space().validate(3.5)
    with pytest.raises(ConfigError, match="non-empty subset of"):
        NB201Space(operations=("none", "conv_7x7"))


# --- directed structure ------------------------------------------------------------------------


def _graphs_of_both_spaces() -> list[tuple[object, object]]:
    rng = np.random.default_rng(3)
    pairs = [(NB201, NB201.sample(rng)) for _ in range(20)]
    for space in UNET_SPACES:
        pairs += [(space, space.sample(rng)) for _ in range(20)]
    return pairs


def test_encodings_are_directed_acyclic_in_node_order() -> None:
    for space, arch in _graphs_of_both_spaces():
        graph = space.encode(arch)
        edges = _edges(graph)
        assert edges, arch
        assert not {(t, s) for s, t in edges} & edges  # no reverse edges: not symmetrised
        assert all(s < t for s, t in edges)  # nodes come in topological order
        assert set(graph.edge_attr.tolist()) == {1}


def test_nb201_wiring_follows_the_cell() -> None:
    graph = NB201Space().encode("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    # nodes: 0 input, 1 + e the op on edge e of EDGES, 7 output
    assert graph.x.tolist() == [0, 5, 2, 3, 6, 4, 2, 1]
    assert _edges(graph) == {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}


def test_to_dense_from_dense_round_trip() -> None:
    pairs = _graphs_of_both_spaces()
    for space in [NB201, *UNET_SPACES]:
        graphs = [space.encode(arch) for s, arch in pairs if s is space]
        X, E, mask = to_dense(graphs, space.max_nodes)
        assert X.shape == mask.shape == (len(graphs), space.max_nodes) and E.shape[1:] == (space.max_nodes,) * 2
        assert mask.sum(1).tolist() == [int(g.num_nodes) for g in graphs]
        assert not torch.equal(E, E.transpose(1, 2))  # E[b, i, j] is the edge i -> j only
        for graph, b in zip(graphs, range(len(graphs))):
            for s, t, c in graph_edges(graph):
                assert E[b, s, t] == c and E[b, t, s] == 0
        for graph, back in zip(graphs, from_dense(X, E, mask)):
            assert torch.equal(back.x, graph.x) and int(back.num_nodes) == int(graph.num_nodes)
            assert graph_edges(back) == graph_edges(graph)
            assert space.decode(back) == space.decode(graph)


def test_to_dense_refuses_a_graph_larger_than_max_nodes() -> None:
    graph = NB201Space().encode(NB201Space().sample(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="has 8 nodes, more than the space's max_nodes=7"):
        to_dense([graph], 7)


# --- corrupted graphs decode to None ------------------------------------------------------------


def _corruptions(graph, wrong_input: int) -> dict[str, object]:
    x, edges = graph.x.tolist(), sorted(graph_edges(graph))
    n = len(x)
    s, t, c = edges[len(edges) // 2]
    other = [e for e in edges if e != (s, t, c)]
    return {
        "flipped edge": _with(graph, edges=other + [(t, s, c)]),
        "missing edge": _with(graph, edges=other),
        "extra edge": _with(graph, edges=edges + [(0, n - 1, 1)]),
        "self-loop": _with(graph, edges=edges + [(1, 1, 1)]),
        "wrong input class": _with(graph, x=[wrong_input] + x[1:]),
        "extra isolated node": _with(graph, x=x + [x[-1]]),
        "extra chained node": _with(graph, x=x + [x[-1]], edges=edges + [(n - 1, n, 1)]),
        "no nodes": make_graph([], []),
    }


def test_nb201_decode_rejects_corrupted_graphs() -> None:
    space = NB201Space()
    graph = space.encode(space.sample(np.random.default_rng(4)))
    for name, bad in _corruptions(graph, wrong_input=space.node_classes.index("nor_conv_3x3")).items():
        assert space.decode(bad) is None, name
    x = graph.x.tolist()
    assert space.decode(_with(graph, x=x[:-1] + [0])) is None  # output position holds the input class
    assert space.decode(_with(graph, x=[0, 1] + x[2:])) is None  # an op position holds "output"
    # an operation that exists, but not in this (smaller) space
    small = NB201Space(operations=("none", "skip_connect"))
    conv = space.encode({"ops": ["nor_conv_3x3"] + ["none"] * 5})
    assert space.decode(conv) is not None and small.decode(conv) is None


@pytest.mark.parametrize("space", UNET_SPACES, ids=SPACE_IDS)
def test_unet_decode_rejects_corrupted_graphs(space: UNetSpace) -> None:
    graph = space.encode(two_blocks(space))
    names = space.node_classes
    x = graph.x.tolist()
    # one node per stage: stem, each level (multiplier, blocks, attention), bottleneck, head
    assert [names[c] for c in x] == [
        "stem:c8",
        "level:m1:r2:conv",
        "level:m2:r1:attn",
        "mid+attn",
        f"head:h2:d{space.choices['dropout'][0]!r}",
    ]
    assert space.decode(graph).to_dict() == space.validate(two_blocks(space)).to_dict()
    for name, bad in _corruptions(graph, wrong_input=names.index("level:m1:r1:conv")).items():
        assert space.decode(bad) is None, name
    stem, level0, level1, mid, head = x
    cases = {
        "stem in a level's place": [stem, stem, level1, mid, head],
        "bottleneck in a level's place": [stem, names.index("mid"), level1, mid, head],
        "head in a level's place": [stem, head, level1, mid, head],
        "level in the stem's place": [level0, level0, level1, mid, head],
        "no head": [stem, level0, level1, mid, names.index("mid")],
        "no bottleneck": [stem, level0, level1, level1, head],
        "one level": [stem, level0, mid, head],
        "no levels": [stem, mid, head],
        "more levels than the image allows": [stem, level0] + [level1] * max(space.choices["num_levels"]) + [mid, head],
    }
    if space.image_size not in space.choices["attention_resolutions"]:  # full-resolution attention is not allowed
        cases["attention above attention_max_resolution"] = [stem, names.index("level:m1:r2:attn"), level1, mid, head]
    for name, nodes in cases.items():
        bad = make_graph(nodes, [(i, i + 1, 1) for i in range(len(nodes) - 1)])
        assert space.decode(bad) is None, name
    # the same graph with a level changed within the space's choices is another valid architecture
    other = [stem, names.index("level:m2:r3:conv"), level1, mid, head]
    arch = space.decode(make_graph(other, [(i, i + 1, 1) for i in range(4)]))
    assert arch.channel_mult == (2, 2) and arch.num_res_blocks == (3, 1)


def test_unet_decode_keeps_first_mult_is_one() -> None:
    space = UNetSpace(image_size=8, channel_mults=(1, 2), num_res_blocks=(1, 2))
    graph = space.encode({**two_blocks(space), "channel_mult": [1, 2]})
    names, x = space.node_classes, graph.x.tolist()
    assert space.decode(graph) is not None
    wide_first = [x[0], names.index("level:m2:r2:conv")] + x[2:]
    assert space.decode(make_graph(wide_first, [(i, i + 1, 1) for i in range(len(x) - 1)])) is None


def test_unet_decode_rejects_a_well_formed_graph_outside_the_space() -> None:
    wide = UNetSpace(image_size=16, base_channels=(8, 16), num_res_blocks=(1, 2), num_heads=(1, 2))
    narrow = UNetSpace(image_size=16, base_channels=(8, 16), num_res_blocks=(1, 2), num_heads=(1, 2), num_levels=(2,))
    assert narrow.node_classes == wide.node_classes  # same vocabulary, fewer level counts
    three_levels = {
        **two_blocks(wide),
        "channel_mult": [1, 2, 2],
        "num_res_blocks": [1, 1, 1],
        "attention_resolutions": [],
    }
    graph = wide.encode(three_levels)
    assert wide.decode(graph) is not None and narrow.decode(graph) is None


# --- spaces as plain dicts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "space",
    [NB201Space(), NB201Space(operations=("none", "nor_conv_3x3")), *UNET_SPACES, UNetSpace()],
    ids=["nb201", "nb201-small", *SPACE_IDS, "unet-default"],
)
def test_space_from_dict_inverts_to_dict(space) -> None:
    import json

    values = json.loads(json.dumps(space.to_dict()))  # survives JSON, as in a memory file
    rebuilt = space_from_dict(values)
    assert type(rebuilt) is type(space) and rebuilt == space
    assert rebuilt.node_classes == space.node_classes and rebuilt.max_nodes == space.max_nodes


def test_space_from_dict_rejects_an_unknown_kind() -> None:
    with pytest.raises(ConfigError, match=r"Unknown space kind 'nb101'; known kinds: \['nb201', 'unet'\]"):
        space_from_dict({"kind": "nb101"})
    assert NB201Space() != NB201Space(operations=("none",)) and NB201Space() != UNetSpace()


# --- constraints -------------------------------------------------------------------------------


def test_constraints_parse_their_forms() -> None:
    assert Constraint.parse("latency_ms<=5") == Constraint("latency_ms", "<=", 5.0)
    assert Constraint.parse(" params_m >= 1e-1 ") == Constraint("params_m", ">=", 0.1)
    assert Constraint.parse("gflops<.5") == Constraint("gflops", "<", 0.5)
    assert parse_constraints("latency_ms<=5") == [Constraint("latency_ms", "<=", 5.0)]
    assert parse_constraints({"latency_ms": 5.0}) == [Constraint("latency_ms", "<=", 5.0)]
    assert parse_constraints(["latency_ms<=5", "params_m>=1e-1"]) == [
        Constraint("latency_ms", "<=", 5.0),
        Constraint("params_m", ">=", 0.1),
    ]
    assert parse_constraints(None) == []
    assert parse_constraints([Constraint("a", ">", 1.0)]) == [Constraint("a", ">", 1.0)]
    assert str(Constraint.parse("params_m>=1e-1")) == "params_m>=0.1"
    c = Constraint.parse("latency_ms<=5")
    assert (
        c.holds({"latency_ms": 5.0}),
        c.holds({"latency_ms": 5.5}),
        c.holds({}),
        c.holds({"latency_ms": float("nan")}),
    ) == (True, False, None, None)


def test_constraints_parse_json_text() -> None:
    assert parse_constraints('{"latency_ms": 5.0}') == [Constraint("latency_ms", "<=", 5.0)]


@pytest.mark.parametrize(
    "bad",
    [
        "latency_ms=5",
        "latency_ms<=",
        "<=5",
        "latency ms<=5",
        "5>=latency_ms",
        "latency_ms<=five",
        "latency_ms=<5",
        "",
        ["latency_ms<=5", "params_m>>1"],
    ],
)
def test_bad_constraints_raise_config_error(bad) -> None:
    message = r"is not of the form METRIC<=VALUE or METRIC>=VALUE \(e\.g\. 'latency_ms<=5'"
    with pytest.raises(ConfigError, match=message):
        parse_constraints(bad)


@pytest.mark.parametrize("bound", ["5", True, None])
def test_constraint_dicts_need_numeric_bounds(bound) -> None:
    message = r"constraints\['latency_ms'\] must be a number \(an upper bound\).*'latency_ms>=1.0'"
    with pytest.raises(ConfigError, match=message):
        parse_constraints({"latency_ms": bound})
