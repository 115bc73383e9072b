"""DenseCL (src/resmo/methods/densecl.py, losses/dense.py, nn/dense.py) against its
reference, WXinlong/DenseCL ``openselfsup/models/densecl.py`` and ``necks.py`` at 5d1c456,
transcribed here; the dense loss against a value computed by hand; ResMo on DenseCL; the
two queues gathered across two gloo processes; ``resmo pretrain method=densecl``."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from resmo import ResMoSettings, create_backbone, create_method
from resmo.backbones import has_feature_map
from resmo.cli import main
from resmo.losses import dense_correspondence, dense_info_nce
from tests.commands.test_cli import run_main
from tests.conftest import build_method, random_views
from tests.eval_helpers import assert_one_line_error
from tests.methods.test_distributed_equivalence import free_port
from tests.pretrain_helpers import tiny_overrides


def _outputs(method, views):
    with torch.no_grad():
        return method.encode_student(views), method.encode_teacher(views)


# ---------------------------------------------------------------------------------------
# backbones: the last feature map
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, side", [("resnet_small", {"width": 8}, 2), ("resnet18", {}, 1)])
def test_resnets_expose_their_last_feature_map(name, options, side):
    torch.manual_seed(0)
    backbone = create_backbone(name, **options).eval()
    images = torch.randn(2, 3, 16 if name == "resnet_small" else 32, 16 if name == "resnet_small" else 32)
    feature_map = backbone.feature_map(images)
    assert feature_map.shape == (2, backbone.feature_dim, side, side)
    pooled = backbone(images)
    assert torch.equal(pooled, backbone.pool(feature_map))
    if name == "resnet18":  # torchvision's own forward (fc = Identity) gives the same features
        assert torch.equal(pooled, backbone.net(images))
    assert has_feature_map(backbone)


def test_a_vit_with_densecl_is_a_one_line_error(capsys):
    backbone = create_backbone("vit_tiny", img_size=32, patch_size=4)
    assert not has_feature_map(backbone)
    with pytest.raises(ValueError, match=r"densecl needs a backbone with a spatial feature map.*backbone=resnet50"):
        create_method("densecl", backbone)
    code, err = run_main(["pretrain", "method=densecl", "backbone=vit_tiny", "data.synthetic.num_samples=64",
                          "data.synthetic.val_num_samples=32", "train.batch_size=16",
                          "train.progress_bar=false", "data.num_workers=0"], capsys)
    assert_one_line_error(code, err, "densecl needs a backbone with a spatial feature map", "backbone=resnet50")


def test_densecl_needs_two_teacher_views():
    with pytest.raises(ValueError, match="num_teacher_views must be 2"):
        build_method("densecl", num_teacher_views=3)


# ---------------------------------------------------------------------------------------
# the dense loss, by hand
# ---------------------------------------------------------------------------------------
def test_correspondence_is_the_argmax_of_cosine_not_of_the_dot_product():
    student = torch.tensor([[[1.0], [0.0]]])  # one image, 2 channels, one position: (1, 0)
    teacher = torch.tensor([[[3.0, 0.9], [3.0, 0.1]]])  # positions (3, 3) and (0.9, 0.1)
    # cos: 0.707 and 0.994; dot: 3 and 0.9 -> the cosine picks position 1
    assert dense_correspondence(student, teacher_map=teacher).tolist() == [[1]]


def _on_circle(angles: list[float], radius: float) -> torch.Tensor:
    """``[2, S]``: the points ``radius * (cos a, sin a)``, one column per angle."""
    return torch.tensor([[radius * math.cos(a) for a in angles], [radius * math.sin(a) for a in angles]])


def test_dense_loss_equals_the_hand_computed_value():
    # 2 images, 2x2 maps (S = 4 positions, row-major), 4 backbone channels, 2-d dense vectors
    # backbone maps: student position i holds e_i; teacher position j holds e_perm[j], so the
    # correspondence j*(i) is perm^-1(i): image 0 [1, 3, 0, 2], image 1 [3, 2, 1, 0]
    perms = [[2, 0, 3, 1], [3, 2, 1, 0]]
    matches = [[1, 3, 0, 2], [3, 2, 1, 0]]
    student_map = torch.eye(4).expand(2, 4, 4).reshape(2, 4, 2, 2)
    teacher_map = torch.stack([torch.eye(4)[:, perm] for perm in perms]).reshape(2, 4, 2, 2)
    assert dense_correspondence(student_map, teacher_map=teacher_map).tolist() == matches

    query_angles = [[0.0, 0.3, 0.6, 0.9], [1.2, 1.5, 1.8, 2.1]]
    key_angles = [[0.1, 0.5, 1.0, 2.0], [0.2, 0.4, 0.8, 1.6]]
    negative_angles, tau = [math.pi / 2, math.pi], 0.5
    query = torch.stack([_on_circle(a, 2.0) for a in query_angles])  # [2, 2, 4], norm 2
    key = torch.stack([_on_circle(a, 3.0) for a in key_angles])  # norm 3
    queue = _on_circle(negative_angles, 1.0).T  # [K = 2, D = 2] unit rows

    rows = []
    for b in range(2):
        for i in range(4):
            theta = query_angles[b][i]
            positive = math.cos(theta - key_angles[b][matches[b][i]]) / tau
            negatives = [math.cos(theta - phi) / tau for phi in negative_angles]
            rows.append(-positive + math.log(math.exp(positive) + sum(math.exp(n) for n in negatives)))
    expected = sum(rows) / len(rows)

    loss = dense_info_nce(query, key=key, student_map=student_map, teacher_map=teacher_map,
                          queue=queue, temperature=tau)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # the positive is the matched position: the same position (no correspondence) differs
    same_position = dense_info_nce(query, key=key, student_map=student_map, teacher_map=student_map,
                                   queue=queue, temperature=tau)
    assert abs(same_position.item() - expected) > 1e-3


# ---------------------------------------------------------------------------------------
# the method against the reference forward_train, transcribed
# ---------------------------------------------------------------------------------------
def reference_losses(student_out, teacher_out, queue, queue2, temperature, loss_lambda):
    """WXinlong/DenseCL ``DenseCL.forward_train`` from the encoder outputs on (im_q, im_k);
    queues in the reference's ``[C, K]`` layout."""
    q, q_grid, q2 = student_out.projection, student_out.dense, student_out.dense_pooled
    q_b = student_out.feature_map
    q_b = q_b.view(q_b.size(0), q_b.size(1), -1)
    q = F.normalize(q, dim=1)
    q2 = F.normalize(q2, dim=1)
    q_grid = F.normalize(q_grid, dim=1)
    q_b = F.normalize(q_b, dim=1)
    k, k_grid, k2 = teacher_out.projection, teacher_out.dense, teacher_out.dense_pooled
    k_b = teacher_out.feature_map
    k_b = k_b.view(k_b.size(0), k_b.size(1), -1)
    k = F.normalize(k, dim=1)
    k2 = F.normalize(k2, dim=1)
    k_grid = F.normalize(k_grid, dim=1)
    k_b = F.normalize(k_b, dim=1)
    l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
    l_neg = torch.einsum("nc,ck->nk", [q, queue.clone().detach()])
    backbone_sim_matrix = torch.matmul(q_b.permute(0, 2, 1), k_b)
    densecl_sim_ind = backbone_sim_matrix.max(dim=2)[1]
    indexed_k_grid = torch.gather(k_grid, 2, densecl_sim_ind.unsqueeze(1).expand(-1, k_grid.size(1), -1))
    densecl_sim_q = (q_grid * indexed_k_grid).sum(1)
    l_pos_dense = densecl_sim_q.view(-1).unsqueeze(-1)
    q_grid = q_grid.permute(0, 2, 1)
    q_grid = q_grid.reshape(-1, q_grid.size(2))
    l_neg_dense = torch.einsum("nc,ck->nk", [q_grid, queue2.clone().detach()])

    def head(pos, neg):  # ContrastiveHead
        logits = torch.cat((pos, neg), dim=1) / temperature
        return F.cross_entropy(logits, torch.zeros(pos.size(0), dtype=torch.long))

    single, dense = head(l_pos, l_neg), head(l_pos_dense, l_neg_dense)
    return single * (1 - loss_lambda) + dense * loss_lambda, single, dense, k, k2


def test_densecl_defaults_are_the_reference_recipes():
    method = create_method("densecl", create_backbone("resnet_small", width=8))
    assert (method.temperature, method.loss_lambda, method.dense_warmup_steps) == (0.2, 0.5, 0)
    assert method.queue.size == method.dense_queue.size == 65536
    assert method.queue.keys.shape[1] == method.dense_queue.keys.shape[1] == 128
    assert method.momentum_at(0, total_steps=10) == method.momentum_at(9, total_steps=10) == 0.999
    # DenseCLNeck: fc-relu-fc on the pooled map, conv1x1-relu-conv1x1 on the map (hidden 2048)
    layout = [type(m).__name__ for m in method.student.projector]
    assert layout == ["Linear", "ReLU", "Linear"]
    assert [type(m).__name__ for m in method.student.dense_projector] == ["Conv2d", "ReLU", "Conv2d"]
    first, last = method.student.projector[0], method.student.dense_projector[2]
    assert first.out_features == 2048 and last.kernel_size == (1, 1) and last.out_channels == 128
    assert torch.equal(first.bias, torch.zeros_like(first.bias))  # init_linear='kaiming'


def test_densecl_loss_is_the_reference_forward_train(make_method, make_views):
    method = make_method("densecl", temperature=0.2, loss_lambda=0.5)
    with torch.no_grad():  # fill the queues with other keys than their random start
        method.queue.keys.copy_(F.normalize(torch.randn_like(method.queue.keys), dim=1))
    views = make_views(2, batch=4, size=16)
    student, teacher = _outputs(method, views)
    with torch.no_grad():
        student_out, teacher_out = method.student(views[0]), method.teacher(views[1])
    total, single, dense, k, k2 = reference_losses(
        student_out, teacher_out, method.queue.keys.T, method.dense_queue.keys.T, 0.2, 0.5)
    loss, parts = method.ssl_loss_and_parts(student, teacher, step=0)
    torch.testing.assert_close(parts["ssl_global"], single, rtol=0, atol=1e-6)
    torch.testing.assert_close(parts["ssl_dense"], dense, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, total, rtol=0, atol=1e-6)
    # after the step, the reference's k and k2 (view 2's keys) are enqueued
    result = method(views)
    method.after_optimizer_step(result, step=0, total_steps=10)
    assert int(method.queue.pointer) == int(method.dense_queue.pointer) == 4
    torch.testing.assert_close(method.queue.keys[:4], k, rtol=0, atol=1e-6)
    torch.testing.assert_close(method.dense_queue.keys[:4], k2, rtol=0, atol=1e-6)


def test_dense_warmup_sets_the_dense_weight_to_zero_first(make_method, make_views):
    method = make_method("densecl", dense_warmup_steps=2, loss_lambda=0.5)
    student, teacher = _outputs(method, make_views(2))
    for step, weight in ((0, 0.0), (1, 0.0), (2, 0.5)):
        loss, parts = method.ssl_loss_and_parts(student, teacher, step=step)
        expected = parts["ssl_global"] * (1 - weight) + parts["ssl_dense"] * weight
        assert torch.equal(loss, expected), step


def test_the_forward_pass_leaves_the_queues_alone(make_method, make_views):
    method = make_method("densecl")
    before = method.queue.keys.clone(), method.dense_queue.keys.clone()
    method(make_views(2)).loss.backward()
    assert torch.equal(method.queue.keys, before[0]) and torch.equal(method.dense_queue.keys, before[1])


# ---------------------------------------------------------------------------------------
# ResMo on DenseCL; the teacher gets no gradient
# ---------------------------------------------------------------------------------------
def _perturbed(method):
    with torch.no_grad():
        for parameter in method.student_parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return method


@pytest.mark.parametrize("level", ["output", "features"])
def test_resmo_pairs_the_same_view_globally_and_at_the_same_positions(level, make_method, make_views):
    method = _perturbed(make_method("densecl", resmo=ResMoSettings(level=level), loss_lambda=0.3))
    result = method(make_views(2))
    s, t = result.student, result.teacher
    if level == "features":
        s_global, t_global = s.features[0], t.features[0]
        s_dense, t_dense = s.feature_maps[0].flatten(2), t.feature_maps[0].flatten(2)
    else:
        s_global, t_global, s_dense, t_dense = s.outputs[0], t.outputs[0], s.dense[0], t.dense[0]
    global_term = (2 - 2 * F.cosine_similarity(s_global, t_global, dim=1)).mean()
    dense_term = (2 - 2 * F.cosine_similarity(s_dense, t_dense, dim=1)).mean()  # per position
    expected = 0.7 * global_term + 0.3 * dense_term
    torch.testing.assert_close(result.terms["resmo"], expected.detach(), rtol=1e-5, atol=1e-6)
    assert result.terms["resmo"].item() > 1e-4
    torch.testing.assert_close(result.loss, result.terms["ssl"] + result.terms["resmo"], rtol=1e-6, atol=1e-6)


def _grads(method):
    return [None if p.grad is None else p.grad.clone() for p in method.student_parameters()]


def test_resmo_weight_zero_is_bitwise_plain_densecl(make_method, make_views):
    views = make_views(2)
    plain = _perturbed(make_method("densecl", resmo=ResMoSettings(weight=0.0)))
    state = plain.state_dict()
    results, grads = {}, {}
    for label, resmo in (("plain", ResMoSettings(weight=0.0)),
                         ("ramp", ResMoSettings(weight=1.0, warmup_epochs=3)),  # lambda(0) = 0
                         ("on", ResMoSettings(weight=1.0))):
        method = plain if label == "plain" else make_method("densecl", seed=5, resmo=resmo)
        method.load_state_dict(state)
        results[label] = method(views, step=0)
        results[label].loss.backward()
        grads[label] = _grads(method)
    # plain DenseCL written out: the reference's loss of the same encoders
    student_out, teacher_out = plain.student(views[0]), plain.teacher(views[1])
    reference, *_ = reference_losses(student_out, teacher_out, plain.queue.keys.T,
                                     plain.dense_queue.keys.T, 0.2, 0.5)
    torch.testing.assert_close(results["plain"].loss, reference, rtol=0, atol=1e-6)
    assert "resmo" not in results["plain"].terms and results["ramp"].terms["resmo"] > 0
    assert torch.equal(results["ramp"].loss, results["plain"].loss)
    for got, want in zip(grads["ramp"], grads["plain"], strict=True):
        assert (got is None and want is None) or torch.equal(got, want)
    assert not torch.equal(results["on"].loss, results["plain"].loss)
    assert any(not torch.equal(g, w) for g, w in zip(grads["on"], grads["plain"], strict=True) if g is not None)


def test_the_teacher_gets_no_gradient(make_method, make_views):
    method = _perturbed(make_method("densecl", resmo=ResMoSettings(weight=1.0)))
    teacher_before = {k: v.clone() for k, v in method.teacher.state_dict().items()}
    result = method(make_views(2))
    teacher = result.teacher
    for tensor in [*teacher.outputs, *teacher.features, *teacher.feature_maps, *teacher.dense, *teacher.dense_pooled]:
        assert not tensor.requires_grad
    result.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    for key, value in method.teacher.state_dict().items():
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked")):  # its own BN
            assert torch.equal(value, teacher_before[key]), key
    assert all(p.grad is not None for p in method.student.parameters())  # both heads learn


# ---------------------------------------------------------------------------------------
# two gloo processes: both queues receive every rank's keys, in rank order
# ---------------------------------------------------------------------------------------
BATCH = 4


def _queue_rank_main(rank: int, world: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        method = build_method("densecl", seed=0, queue_size=64)
        views = [view.chunk(world)[rank] for view in random_views(2, batch=BATCH * world, size=16)]
        result = method(views, step=0)
        method.after_optimizer_step(result, step=0, total_steps=10)
        torch.save({
            "keys": result.teacher.outputs[1], "dense_keys": result.teacher.dense_pooled[1],
            "queue": method.queue.keys, "queue_pointer": method.queue.pointer,
            "dense_queue": method.dense_queue.keys, "dense_pointer": method.dense_queue.pointer,
        }, os.path.join(folder, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_both_queues_are_gathered_across_two_gloo_processes(tmp_path):
    mp.spawn(_queue_rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    for queue, keys, pointer in (("queue", "keys", "queue_pointer"), ("dense_queue", "dense_keys", "dense_pointer")):
        gathered = F.normalize(torch.cat([ranks[0][keys], ranks[1][keys]]), dim=1)
        for state in ranks:
            assert int(state[pointer]) == 2 * BATCH  # both ranks' keys
            torch.testing.assert_close(state[queue][: 2 * BATCH], gathered, rtol=0, atol=1e-6)
        assert torch.equal(ranks[0][queue], ranks[1][queue])  # the same queue on every rank
    assert not torch.allclose(ranks[0]["keys"], ranks[1]["keys"])  # the ranks had different images


# ---------------------------------------------------------------------------------------
# resmo pretrain method=densecl
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resmo_pretrain_densecl_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", *tiny_overrides(out, method="densecl", epochs=1)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "densecl" and summary["epochs"] == 1
    assert set(summary["intra_gap"]) == {"features", "projection", "output"}
    assert math.isfinite(summary["final_loss"])
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/ssl_global_step", "train/ssl_dense_step", "train/resmo_step"} <= set(header)
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    steps = 192 // 32
    assert state["global_step"] == steps
    for name in ("queue", "dense_queue"):  # 32 keys per step from view 2
        assert int(state["state_dict"][f"method.{name}.pointer"]) == (steps * 32) % 256
    assert (out / "student_backbone.pt").is_file() and (out / "teacher_backbone.pt").is_file()
