"""HistGradientBoostingClassifier as ONNX, native categorical splits included.

Written by hand because no maintained converter does it. skl2onnx (1.20) writes a categorical
split as a numeric threshold on the category's code: a 2-class model with one categorical
feature disagreed with scikit-learn on 281 of 500 rows here (its issues #1051 and #1101 say
set membership is not supported), and it writes the trees in float32, whose thresholds can
flip a row scikit-learn compares in float64. onnxmltools converts LightGBM's categorical
splits, not scikit-learn's. ONNX-ML's ``TreeEnsemble`` (ai.onnx.ml opset 5, run by ONNX
Runtime) has what these trees need: set-membership splits (``BRANCH_MEMBER``), a direction for
missing values per node, and float64 thresholds and leaves.

The graph computes what scikit-learn's ``_raw_predict`` does, in the same order: the baseline
plus each tree's leaf, added one tree after the other in float64 (the baseline is written as
a first, one-leaf tree per class, so ONNX Runtime's sums, on the one thread a petalops session
runs, start where scikit-learn's do). ONNX Runtime runs TreeEnsemble from version 1.20. The
label is scikit-learn's ``predict`` (``raw > 0`` for two classes, the argmax of the raw scores
for more); the probabilities are the sigmoid or softmax of the raw scores.

scikit-learn (since 1.4) first encodes the categorical columns itself (an OrdinalEncoder over
the values seen in training; any other value, and NaN, becomes NaN) and puts them before the
numeric ones; its trees split on those codes and columns. The graph takes the columns as
given: each split names the input column, and a categorical split lists the input *values* of
its codes. A categorical split in scikit-learn (``_predictor.pyx``) sends a code left if it is
in the node's left bitset, right if it is another category seen in training, and the way of
missing values if it is NaN (a value never seen in training, or a missing one). As a
set-membership test, whose false branch NaN and every value outside the set take, that is:
"in the left set" when missing values go right, else "in the other known categories" with
the branches swapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import numpy_helper
from sklearn.ensemble import HistGradientBoostingClassifier

TREE_OPSET = 5  # ai.onnx.ml: TreeEnsemble

# TreeEnsemble's nodes_modes
BRANCH_LEQ = 0
BRANCH_LT = 1
BRANCH_MEMBER = 6


@dataclass
class _Ensemble:
    """The TreeEnsemble attributes, built one tree at a time."""

    roots: list[int] = field(default_factory=list)
    features: list[int] = field(default_factory=list)
    modes: list[int] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    true_ids: list[int] = field(default_factory=list)
    true_leaf: list[int] = field(default_factory=list)
    false_ids: list[int] = field(default_factory=list)
    false_leaf: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    members: list[float] = field(default_factory=list)
    leaf_targets: list[int] = field(default_factory=list)
    leaf_weights: list[float] = field(default_factory=list)

    def node(
        self,
        feature: int,
        mode: int,
        split: float,
        true: tuple[bool, int],
        false: tuple[bool, int],
        missing_true: bool,
    ) -> None:
        self.features.append(feature)
        self.modes.append(mode)
        self.splits.append(split)
        self.true_leaf.append(int(true[0]))
        self.true_ids.append(true[1])
        self.false_leaf.append(int(false[0]))
        self.false_ids.append(false[1])
        self.missing_true.append(int(missing_true))

    def constant(self, target: int, value: float) -> None:
        """A tree that is one leaf: a root whose branches both reach it."""
        leaf = len(self.leaf_weights)
        self.leaf_targets.append(target)
        self.leaf_weights.append(value)
        self.roots.append(len(self.features))
        self.node(0, BRANCH_LEQ, 0.0, (True, leaf), (True, leaf), False)

    def tree(self, nodes: Any, left_bitsets: Any, columns: _Columns, target: int) -> None:
        """One of scikit-learn's TreePredictor node arrays (``predictor.nodes``)."""
        if nodes[0]["is_leaf"]:
            self.constant(target, float(nodes[0]["value"]))
            return
        # The global index of each local node among the ensemble's split nodes or its leaves.
        place: list[tuple[bool, int]] = []
        n_splits, n_leaves = len(self.features), len(self.leaf_weights)
        for node in nodes:
            if node["is_leaf"]:
                place.append((True, n_leaves))
                n_leaves += 1
            else:
                place.append((False, n_splits))
                n_splits += 1
        self.roots.append(place[0][1])
        for node in nodes:
            if node["is_leaf"]:
                self.leaf_targets.append(target)
                self.leaf_weights.append(float(node["value"]))
                continue
            left, right = place[int(node["left"])], place[int(node["right"])]
            inner = int(node["feature_idx"])
            feature = columns.inputs[inner]
            to_left = bool(node["missing_go_to_left"])
            if not node["is_categorical"]:
                self.node(feature, BRANCH_LEQ, float(node["num_threshold"]), left, right, to_left)
                continue
            bitset = left_bitsets[int(node["bitset_idx"])]
            left_set = columns.values(inner, _bitset_members(bitset))
            # NaN, and any value outside the set, take the false branch: the missing way.
            members, true, false = (
                (sorted(columns.known[inner] - left_set), right, left)
                if to_left
                else (sorted(left_set), left, right)
            )
            if not members:  # never true: x < -inf
                self.node(feature, BRANCH_LT, -np.inf, true, false, False)
                continue
            self.node(feature, BRANCH_MEMBER, 0.0, true, false, False)
            self.members.extend([*members, np.nan])

    def attributes(self, n_targets: int) -> dict[str, Any]:
        def doubles(values: list[float]) -> Any:
            return numpy_helper.from_array(np.asarray(values, dtype=np.float64))

        attrs: dict[str, Any] = {
            "n_targets": n_targets,
            "aggregate_function": 1,  # SUM
            "post_transform": 0,  # NONE: the raw scores
            "tree_roots": self.roots,
            "nodes_featureids": self.features,
            "nodes_modes": numpy_helper.from_array(np.asarray(self.modes, dtype=np.uint8)),
            "nodes_splits": doubles(self.splits),
            "nodes_truenodeids": self.true_ids,
            "nodes_trueleafs": self.true_leaf,
            "nodes_falsenodeids": self.false_ids,
            "nodes_falseleafs": self.false_leaf,
            "nodes_missing_value_tracks_true": self.missing_true,
            "leaf_targetids": self.leaf_targets,
            "leaf_weights": doubles(self.leaf_weights),
        }
        if self.members:
            attrs["membership_values"] = doubles(self.members)
        return attrs


def _bitset_members(bitset: Any) -> set[int]:
    """The categories (0..255) of one of scikit-learn's 8 x 32-bit bitsets."""
    words = [int(w) for w in bitset]
    return {v for v in range(32 * len(words)) if (words[v >> 5] >> (v & 31)) & 1}


@dataclass(frozen=True)
class _Columns:
    """How the trees' columns (scikit-learn's own encoding) map to the model's input."""

    inputs: list[int]  # tree column -> input column
    codes: dict[int, list[float]]  # categorical tree column -> input value of each code
    known: dict[int, set[float]]  # categorical tree column -> input values seen in training

    def values(self, inner: int, codes: set[int]) -> set[float]:
        table = self.codes[inner]
        return {table[c] for c in codes if c < len(table)}


def _columns(clf: HistGradientBoostingClassifier) -> _Columns:
    n_features = int(clf.n_features_in_)
    mask = clf.is_categorical_
    if mask is None or not mask.any():
        return _Columns(list(range(n_features)), {}, {})
    # The encoded categorical columns first, then the numeric ones, each in input order.
    inputs = [*np.flatnonzero(mask).tolist(), *np.flatnonzero(~mask).tolist()]
    categories = clf._preprocessor.named_transformers_["encoder"].categories_
    codes = {t: [float(v) for v in categories[t]] for t in range(len(categories))}
    thresholds = clf._bin_mapper.bin_thresholds_  # a categorical column's: its known codes
    known = {t: {codes[t][int(c)] for c in thresholds[t]} for t in codes}
    return _Columns([int(i) for i in inputs], codes, known)


def tree_ensemble_attributes(clf: HistGradientBoostingClassifier) -> dict[str, Any]:
    """The attributes of one TreeEnsemble node computing ``clf``'s raw scores."""
    n_targets = int(clf.n_trees_per_iteration_)
    columns = _columns(clf)
    ensemble = _Ensemble()
    baseline = np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1)
    for target in range(n_targets):
        ensemble.constant(target, float(baseline[target]))
    for iteration in clf._predictors:
        for target, predictor in enumerate(iteration):
            ensemble.tree(predictor.nodes, predictor.raw_left_cat_bitsets, columns, target)
    return ensemble.attributes(n_targets)


def convert_hist_gradient_boosting(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter (``custom_conversion_functions``) for HistGradientBoostingClassifier:
    outputs the label and the class probabilities, in float64."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    clf = operator.raw_operator
    name = scope.get_unique_variable_name
    x = concatenate_variables(scope, operator.inputs, container)
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        cast = name("double")
        container.add_node("Cast", [x], [cast], to=onnx_proto.TensorProto.DOUBLE, name=name("Cast"))
        x = cast
    raw = name("raw")
    container.add_node(
        "TreeEnsemble",
        [x],
        [raw],
        op_domain="ai.onnx.ml",
        # skl2onnx 1.20 writes ai.onnx.ml 3 at most: `raise_tree_opset` raises the model's
        # import to TREE_OPSET afterwards.
        op_version=3,
        name=name("TreeEnsemble"),
        **tree_ensemble_attributes(clf),
    )
    index = name("index")
    proba = name("proba")
    # skl2onnx's CalibratedClassifierCV converter asks for the decision function instead of
    # the probabilities (option raw_scores; for two classes it reads the second column).
    raw_scores = container.get_options(clf, {"raw_scores": False})["raw_scores"]
    if clf.n_trees_per_iteration_ == 1:
        zero, one = name("zero"), name("one")
        container.add_initializer(zero, onnx_proto.TensorProto.DOUBLE, [], [0.0])
        container.add_initializer(one, onnx_proto.TensorProto.DOUBLE, [], [1.0])
        positive, negative = name("positive"), name("negative")
        if raw_scores:
            container.add_node("Neg", [raw], [negative], name=name("Neg"))
            container.add_node("Concat", [negative, raw], [proba], axis=1, name=name("Concat"))
        else:
            container.add_node("Sigmoid", [raw], [positive], name=name("Sigmoid"))
            container.add_node("Sub", [one, positive], [negative], name=name("Sub"))
            container.add_node("Concat", [negative, positive], [proba], axis=1, name=name("Concat"))
        above, flag, shape = name("above"), name("flag"), name("shape")
        container.add_node("Greater", [raw, zero], [above], name=name("Greater"))
        container.add_node(
            "Cast", [above], [flag], to=onnx_proto.TensorProto.INT64, name=name("Cast")
        )
        container.add_initializer(shape, onnx_proto.TensorProto.INT64, [1], [-1])
        container.add_node("Reshape", [flag, shape], [index], name=name("Reshape"))
    elif raw_scores:
        container.add_node("Identity", [raw], [proba], name=name("Identity"))
        container.add_node("ArgMax", [raw], [index], axis=1, keepdims=0, name=name("ArgMax"))
    else:
        container.add_node("Softmax", [raw], [proba], axis=1, name=name("Softmax"))
        container.add_node("ArgMax", [raw], [index], axis=1, keepdims=0, name=name("ArgMax"))
    classes = np.asarray(clf.classes_)
    labels = name("classes")
    if classes.dtype.kind in "iub":
        container.add_initializer(
            labels, onnx_proto.TensorProto.INT64, [len(classes)], classes.astype(np.int64).tolist()
        )
    else:
        container.add_initializer(
            labels,
            onnx_proto.TensorProto.STRING,
            [len(classes)],
            [str(c).encode("utf-8") for c in classes],
        )
    container.add_node(
        "Gather", [labels, index], [operator.outputs[0].full_name], axis=0, name=name("Gather")
    )
    out = operator.outputs[1]
    if isinstance(out.type, DoubleTensorType):
        container.add_node("Identity", [proba], [out.full_name], name=name("Identity"))
    else:
        container.add_node(
            "Cast", [proba], [out.full_name], to=onnx_proto.TensorProto.FLOAT, name=name("Cast")
        )


def calculate_hist_gradient_boosting_shapes(operator: Any) -> None:
    """skl2onnx's classifier shapes, with float64 probabilities for float64 inputs."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    calculate_linear_classifier_output_shapes(operator)
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        operator.outputs[1].type = DoubleTensorType(operator.outputs[1].type.shape)


def raise_tree_opset(model: Any) -> None:
    """Import ai.onnx.ml at `TREE_OPSET` in a model that holds a TreeEnsemble node (the other
    ai.onnx.ml operators skl2onnx writes keep their meaning there)."""
    if any(n.op_type == "TreeEnsemble" and n.domain == "ai.onnx.ml" for n in model.graph.node):
        for entry in model.opset_import:
            if entry.domain == "ai.onnx.ml":
                entry.version = max(entry.version, TREE_OPSET)
