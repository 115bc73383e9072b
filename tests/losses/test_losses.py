"""Every SSL loss against a formula written out independently (src/resmo/losses).

Small cases are worked out by hand in the comments; larger random cases are checked
against plain-Python loops over scalars (``math.exp`` / ``math.log``), which share no
code with the vectorised implementations.
"""

from __future__ import annotations

import math

import pytest
import torch

from resmo.losses import (
    DinoCenter,
    MoCoQueue,
    byol_regression,
    dino_cross_entropy,
    info_nce,
    kd_cross_entropy,
    residual_momentum_loss,
)

LN2, LN3 = math.log(2.0), math.log(3.0)


# ---------------------------------------------------------------------------------------
# scalar reference implementations (lists of floats, explicit loops)
# ---------------------------------------------------------------------------------------
def _norm(vector: list[float]) -> list[float]:
    length = math.sqrt(sum(x * x for x in vector))
    return [x / length for x in vector]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _log_softmax(logits: list[float], index: int) -> float:
    top = max(logits)
    return logits[index] - top - math.log(sum(math.exp(x - top) for x in logits))


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    return [e / sum(exps) for e in exps]


def _info_nce_loop(query, key, temperature, queue=None, key_offset=0) -> float:
    q = [_norm(row) for row in query.tolist()]
    k = [_norm(row) for row in key.tolist()]
    total = 0.0
    for i, qi in enumerate(q):
        if queue is None:
            logits = [_dot(qi, kj) / temperature for kj in k]
            positive = i + key_offset
        else:
            negatives = [_norm(row) for row in queue.tolist()]
            logits = [_dot(qi, k[i]) / temperature] + [_dot(qi, n) / temperature for n in negatives]
            positive = 0
        total += -_log_softmax(logits, positive)
    return total / len(q)


def _cross_entropy(target: list[float], logits: list[float], temperature: float) -> float:
    scaled = [x / temperature for x in logits]
    return -sum(p * _log_softmax(scaled, k) for k, p in enumerate(target))


# ---------------------------------------------------------------------------------------
# InfoNCE
# ---------------------------------------------------------------------------------------
def test_info_nce_in_batch_hand_computed_2x2():
    # q normalises to the identity; k normalises to [[1, 0], [1/sqrt2, 1/sqrt2]]; tau = 0.5
    # logits = [[2, sqrt2], [0, sqrt2]], positives on the diagonal:
    # row 0: -log(e^2 / (e^2 + e^sqrt2)) = log(1 + e^(sqrt2 - 2))
    # row 1: -log(e^sqrt2 / (e^0 + e^sqrt2)) = log(1 + e^-sqrt2)
    query = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    key = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = (math.log1p(math.exp(math.sqrt(2) - 2)) + math.log1p(math.exp(-math.sqrt(2)))) / 2
    loss = info_nce(query, key=key, temperature=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_with_queue_hand_computed():
    # q = k = [1, 0]; normalised queue = [[0, 1], [-1, 0]]; tau = 0.5
    # logits = [1, 0, -1] / 0.5 = [2, 0, -2], positive at column 0:
    # loss = -log(e^2 / (e^2 + 1 + e^-2)) = log(1 + e^-2 + e^-4)
    query = torch.tensor([[1.0, 0.0]])
    key = torch.tensor([[5.0, 0.0]])
    queue = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    loss = info_nce(query, key=key, temperature=0.5, queue=queue)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2) + math.exp(-4)), rel=1e-6)


@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_info_nce_in_batch_matches_loop(temperature):
    generator = torch.Generator().manual_seed(0)
    query, key = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    loss = info_nce(query, key=key, temperature=temperature)
    assert loss.item() == pytest.approx(_info_nce_loop(query, key, temperature), rel=1e-5)


def test_info_nce_key_offset_selects_keys_of_this_rank():
    # keys of two "ranks" concatenated; this rank's positives are rows 3..5
    generator = torch.Generator().manual_seed(1)
    query, key = torch.randn(3, 4, generator=generator), torch.randn(6, 4, generator=generator)
    loss = info_nce(query, key=key, temperature=0.2, key_offset=3)
    expected = _info_nce_loop(query, key, 0.2, key_offset=3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert info_nce(query, key=key, temperature=0.2).item() != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_info_nce_with_queue_matches_loop(temperature):
    generator = torch.Generator().manual_seed(2)
    query, key = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    queue = torch.randn(7, 3, generator=generator)
    loss = info_nce(query, key=key, temperature=temperature, queue=queue)
    expected = _info_nce_loop(query, key, temperature, queue=queue)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------------------
# BYOL
# ---------------------------------------------------------------------------------------
def test_byol_regression_hand_computed():
    # sample 0: orthogonal -> 2 - 2*0 = 2; sample 1: 45 degrees -> 2 - sqrt2
    # sample 2: same direction (different length) -> 0
    prediction = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 2.0]])
    target = torch.tensor([[0.0, 3.0], [1.0, 1.0], [1.0, 1.0]])
    expected = (2.0 + (2.0 - math.sqrt(2.0)) + 0.0) / 3
    assert byol_regression(prediction, target=target).item() == pytest.approx(expected, abs=1e-6)


def test_byol_regression_is_squared_distance_of_unit_vectors():
    generator = torch.Generator().manual_seed(3)
    prediction, target = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    expected = sum(
        sum((a - b) ** 2 for a, b in zip(_norm(p), _norm(z), strict=True))
        for p, z in zip(prediction.tolist(), target.tolist(), strict=True)
    ) / 6
    assert byol_regression(prediction, target=target).item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------------------
# DINO
# ---------------------------------------------------------------------------------------
def test_dino_cross_entropy_centring_hand_computed():
    # centre [1, -1] makes both teacher rows [0, 0] -> uniform targets (tau_t irrelevant).
    # pair (teacher 0, student 1): student log-probs [ln 3/4, ln 1/4] -> 0.5 * ln(16/3)
    # pair (teacher 1, student 0): student uniform -> ln 2
    teacher = [torch.tensor([[1.0, -1.0]]), torch.tensor([[2.0, 0.0]])]
    student = [torch.tensor([[0.0, 0.0]]), torch.tensor([[LN3, 0.0]])]
    center = torch.tensor([[1.0, -1.0]])
    loss = dino_cross_entropy(
        student, teacher_logits=teacher, center=center, student_temperature=1.0,
        teacher_temperature=0.5,
    )
    expected = (0.5 * math.log(16 / 3) + LN2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # without the centre the second teacher row is not uniform: the value changes
    uncentred = dino_cross_entropy(
        student, teacher_logits=teacher, center=torch.zeros(1, 2), student_temperature=1.0,
        teacher_temperature=0.5,
    )
    assert uncentred.item() != pytest.approx(expected, rel=1e-3)


def test_dino_cross_entropy_sharpening_hand_computed():
    # teacher 0 = [ln2 / 2, 0] with tau_t = 0.5 -> softmax([ln 2, 0]) = [2/3, 1/3]
    # student 1 = [ln 3, 0] with tau_s = 1 -> log-probs [ln 3/4, ln 1/4]
    # pair (t0, s1) = -(2/3 ln 3/4 + 1/3 ln 1/4); pair (t1, s0): uniform student -> ln 2
    teacher = [torch.tensor([[LN2 / 2, 0.0]]), torch.tensor([[0.0, 0.0]])]
    student = [torch.tensor([[0.0, 0.0]]), torch.tensor([[LN3, 0.0]])]
    loss = dino_cross_entropy(
        student, teacher_logits=teacher, center=torch.zeros(1, 2), student_temperature=1.0,
        teacher_temperature=0.5,
    )
    expected = (-(2 / 3 * math.log(3 / 4) + 1 / 3 * math.log(1 / 4)) + LN2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("num_student", [2, 3, 4])
def test_dino_cross_entropy_matches_loop_over_pairs(num_student):
    generator = torch.Generator().manual_seed(4)
    teacher = [torch.randn(3, 5, generator=generator) for _ in range(2)]
    student = [torch.randn(3, 5, generator=generator) for _ in range(num_student)]
    center = torch.randn(1, 5, generator=generator)
    tau_s, tau_t = 0.1, 0.04
    loss = dino_cross_entropy(
        student, teacher_logits=teacher, center=center, student_temperature=tau_s,
        teacher_temperature=tau_t,
    )
    c = center[0].tolist()
    total, pairs = 0.0, 0
    for t_index, t_view in enumerate(teacher):
        for s_index, s_view in enumerate(student):
            if s_index == t_index:  # the same crop is never paired
                continue
            batch = 0.0
            for t_row, s_row in zip(t_view.tolist(), s_view.tolist(), strict=True):
                target = _softmax([(x - ci) / tau_t for x, ci in zip(t_row, c, strict=True)])
                batch += _cross_entropy(target, s_row, tau_s)
            total += batch / len(t_view)
            pairs += 1
    assert pairs == 2 * num_student - 2
    assert loss.item() == pytest.approx(total / pairs, rel=1e-5)


def test_dino_cross_entropy_sends_no_gradient_to_teacher():
    teacher = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    student = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    dino_cross_entropy(
        student, teacher_logits=teacher, center=torch.zeros(1, 4), student_temperature=0.1,
        teacher_temperature=0.04,
    ).backward()
    assert all(t.grad is None for t in teacher)
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)


def test_dino_cross_entropy_needs_two_views():
    one = [torch.randn(2, 3)]
    with pytest.raises(ValueError, match="two views"):
        dino_cross_entropy(
            one, teacher_logits=one, center=torch.zeros(1, 3), student_temperature=0.1,
            teacher_temperature=0.04,
        )


def test_dino_center_update_exact_values():
    center = DinoCenter(2, momentum=0.9)
    assert torch.equal(center.center, torch.zeros(1, 2))
    logits = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[5.0, 6.0], [7.0, 8.0]])]
    # batch mean over both teacher views = [4, 5]; c = 0.9 * 0 + 0.1 * [4, 5]
    center.update(logits)
    torch.testing.assert_close(center.center, torch.tensor([[0.4, 0.5]]), rtol=0, atol=1e-6)
    # c = 0.9 * [0.4, 0.5] + 0.1 * [4, 5] = [0.76, 0.95]
    center.update(logits)
    torch.testing.assert_close(center.center, torch.tensor([[0.76, 0.95]]), rtol=0, atol=1e-6)
    assert "center" in center.state_dict()


def test_dino_center_momentum_zero_and_one():
    logits = [torch.tensor([[1.0, -1.0]])]
    frozen = DinoCenter(2, momentum=1.0)
    frozen.update(logits)
    assert torch.equal(frozen.center, torch.zeros(1, 2))
    replaced = DinoCenter(2, momentum=0.0)
    replaced.update(logits)
    assert torch.equal(replaced.center, torch.tensor([[1.0, -1.0]]))


# ---------------------------------------------------------------------------------------
# MoCo queue
# ---------------------------------------------------------------------------------------
def test_moco_queue_enqueue_wraps_and_moves_pointer():
    torch.manual_seed(0)
    queue = MoCoQueue(2, 5)
    initial = queue.keys.clone()
    torch.testing.assert_close(initial.norm(dim=1), torch.ones(5))
    assert int(queue.pointer) == 0 and queue.size == 5

    # keys are stored L2-normalised: [3, 4] -> [0.6, 0.8]
    first = torch.tensor([[3.0, 4.0], [0.0, 2.0], [-1.0, 0.0]])
    queue.enqueue(first)
    assert int(queue.pointer) == 3
    torch.testing.assert_close(
        queue.keys[:3], torch.tensor([[0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]]), rtol=0, atol=1e-7
    )
    assert torch.equal(queue.keys[3:], initial[3:])  # untouched slots keep their keys

    # three more keys at pointer 3 -> slots 3, 4 and (wrapping) 0; pointer 1
    second = torch.tensor([[0.0, -5.0], [4.0, 3.0], [1.0, 0.0]])
    queue.enqueue(second)
    assert int(queue.pointer) == 1
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.8, 0.6]])
    torch.testing.assert_close(queue.keys, expected, rtol=0, atol=1e-7)


def test_moco_queue_more_keys_than_slots_keeps_the_newest():
    queue = MoCoQueue(1, 3)
    queue.enqueue(torch.tensor([[1.0]]))  # pointer 1
    # 4 keys into 3 slots: only the last 3 (-1, 1, -1) are written, at slots 1, 2, 0
    queue.enqueue(torch.tensor([[1.0], [-1.0], [2.0], [-3.0]]))
    assert int(queue.pointer) == 1
    assert torch.equal(queue.keys, torch.tensor([[-1.0], [-1.0], [1.0]]))


def test_moco_queue_is_in_state_dict():
    queue = MoCoQueue(4, 8)
    queue.enqueue(torch.randn(3, 4))
    state = queue.state_dict()
    assert set(state) == {"keys", "pointer"}
    restored = MoCoQueue(4, 8)
    restored.load_state_dict(state)
    assert torch.equal(restored.keys, queue.keys) and int(restored.pointer) == 3


# ---------------------------------------------------------------------------------------
# knowledge distillation and ResMo distances
# ---------------------------------------------------------------------------------------
def test_kd_cross_entropy_hand_computed():
    # teacher [ln2/2, 0] / 0.5 -> softmax [2/3, 1/3]; student [ln3, 0] / 0.5 = [2 ln3, 0]
    # -> log-probs [ln 9/10, ln 1/10]
    student = torch.tensor([[LN3, 0.0]])
    teacher = torch.tensor([[LN2 / 2, 0.0]])
    expected = -(2 / 3 * math.log(0.9) + 1 / 3 * math.log(0.1))
    loss = kd_cross_entropy(student, teacher=teacher, temperature=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_kd_cross_entropy_matches_loop():
    generator = torch.Generator().manual_seed(5)
    student, teacher = torch.randn(3, 6, generator=generator), torch.randn(3, 6, generator=generator)
    expected = sum(
        _cross_entropy(_softmax([x / 0.3 for x in t]), s, 0.3)
        for s, t in zip(student.tolist(), teacher.tolist(), strict=True)
    ) / 3
    loss = kd_cross_entropy(student, teacher=teacher, temperature=0.3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


RESMO_STUDENT = [torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
RESMO_TEACHER = [torch.tensor([[0.0, 1.0], [2.0, 2.0]]), torch.tensor([[3.0, 0.0], [0.0, -1.0]])]


def test_residual_momentum_cosine_hand_computed():
    # view 1: orthogonal (2), parallel (0) -> 1; view 2: parallel (0), opposite (4) -> 2
    loss = residual_momentum_loss(RESMO_STUDENT, teacher=RESMO_TEACHER, distance="cosine")
    assert loss.item() == pytest.approx(1.5, abs=1e-6)
    # the default distance is cosine
    assert torch.equal(loss, residual_momentum_loss(RESMO_STUDENT, teacher=RESMO_TEACHER))


def test_residual_momentum_mse_hand_computed():
    # mean over the D = 2 dims of (unit s - unit t)^2 = (2 - 2 cos) / 2:
    # view 1: [1, 0] -> 0.5; view 2: [0, 2] -> 1; mean 0.75
    loss = residual_momentum_loss(RESMO_STUDENT, teacher=RESMO_TEACHER, distance="mse")
    assert loss.item() == pytest.approx(0.75, abs=1e-6)


def test_residual_momentum_kd_is_mean_over_views_of_kd():
    # single-sample views; each term worked out by hand as in test_kd_cross_entropy_hand_computed
    student = [torch.tensor([[LN3, 0.0]]), torch.tensor([[0.0, 0.0]])]
    teacher = [torch.tensor([[LN2 / 2, 0.0]]), torch.tensor([[5.0, -5.0]])]
    view1 = -(2 / 3 * math.log(0.9) + 1 / 3 * math.log(0.1))
    view2 = LN2  # uniform student: cross-entropy ln 2 whatever the target
    loss = residual_momentum_loss(student, teacher=teacher, distance="kd", temperature=0.5)
    assert loss.item() == pytest.approx((view1 + view2) / 2, rel=1e-6)


@pytest.mark.parametrize("distance", ["cosine", "mse", "kd"])
def test_residual_momentum_matches_loop(distance):
    generator = torch.Generator().manual_seed(6)
    student = [torch.randn(4, 5, generator=generator) for _ in range(3)]
    teacher = [torch.randn(4, 5, generator=generator) for _ in range(3)]
    per_view = []
    for s_view, t_view in zip(student, teacher, strict=True):
        rows = []
        for s, t in zip(s_view.tolist(), t_view.tolist(), strict=True):
            cos = _dot(_norm(s), _norm(t))
            if distance == "cosine":
                rows.append(2 - 2 * cos)
            elif distance == "mse":
                rows.append(sum((a - b) ** 2 for a, b in zip(_norm(s), _norm(t), strict=True)) / 5)
            else:
                rows.append(_cross_entropy(_softmax([x / 0.2 for x in t]), s, 0.2))
        per_view.append(sum(rows) / len(rows))
    loss = residual_momentum_loss(student, teacher=teacher, distance=distance, temperature=0.2)
    assert loss.item() == pytest.approx(sum(per_view) / 3, rel=1e-5)


def test_residual_momentum_needs_paired_views():
    with pytest.raises(ValueError, match="one to one"):
        residual_momentum_loss([torch.randn(2, 3)], teacher=[torch.randn(2, 3)] * 2)
    with pytest.raises(ValueError, match="one to one"):
        residual_momentum_loss([], teacher=[])
