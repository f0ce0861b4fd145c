"""``pixelpilot train`` on tiny checkpoints: the trainer's token ids are the live prompt's (no
train/serve skew), batches keep the model's M-RoPE positions, checkpoints resume, the output
loads as a model the agent runs with, an extra loss sees the batch's metas, bad input is one
line and an exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from pixelpilot.agent.cli import main
from pixelpilot.agent.dialects import Qwen2VLDialect, get_dialect
from pixelpilot.agent.evaluate import step_context
from pixelpilot.agent.export import export_sft
from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.train import RECORD, train
from pixelpilot.agent.train_batch import Collator, Features, encode_example, example_tensors
from pixelpilot.agent.train_data import DataStats, examples, export_examples, find_data
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.vlm.base import Prompt
from pixelpilot.vlm.constrained import GrammarConstraint
from pixelpilot.vlm.inputs import Encoded, encode, rope_positions
from pixelpilot.vlm.local import LocalModel
from pixelpilot.vlm.registry import load_model, trained_dialect

V1 = Path(__file__).parent / "data" / "trajectory_v1"
BUDGET = PixelBudget(3136, 256 * 28 * 28)  # small screens: ~260 visual tokens per screenshot


class Recording(LocalModel):
    """The real local backend, keeping what it fed the model for each prompt."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fed: list[tuple[Prompt, list[int]]] = []

    def encode(self, prompt: Prompt) -> Encoded:
        enc = super().encode(prompt)
        self.fed.append((prompt, enc.ids))
        return enc


@pytest.fixture
def live_run(tiny_small: Path, desktop: Any, fixture_app: Any, tmp_path: Path) -> Any:
    """A real run of the tiny model on the fixture app: (run dir, model with what it was fed)."""
    model = Recording(str(tiny_small), pixels=BUDGET, temperature=1.0, seed=4)
    run = tmp_path / "run"
    Agent(
        model=model,
        device=desktop,
        dialect=Qwen2VLDialect(thought_tokens=8),
        budgets=Budgets(max_steps=3, max_retries=0),
        recorder=DirectoryRecorder(run),
    ).run("Click the Submit button")
    return run, model


def test_trainer_ids_are_the_ids_the_model_was_fed(live_run: Any) -> None:
    run, model = live_run
    traj = load_trajectory(run)
    stats = DataStats()
    found = list(examples([run], None, BUDGET, stats, only_success=False))
    assert len(found) == len(model.fed) >= 2, (stats, traj.status)  # a continued turn too
    tok = model.processor.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert end in model.stop_ids
    dialect = get_dialect("qwen2vl")
    for ex, (live_prompt, live_ids) in zip(found, model.fed, strict=True):
        f = encode_example(model.processor, ex)
        n = f.prompt_tokens
        assert f.input_ids[:n] == live_ids  # the prompt, token for token
        assert f.input_ids[n:] == tok(ex.answer, add_special_tokens=False)["input_ids"] + [end]
        assert f.labels == [-100] * n + f.input_ids[n:]
        step = traj.steps[ex.meta["step"] - 1]
        assert dialect.parse(ex.answer, live_prompt.meta["ctx"]) == step.action
        # the label is an answer the constrained decoder could write, ending where it stops
        c = GrammarConstraint(live_prompt.grammar or "", tok, model.vocab_size)
        for t in f.input_ids[n:]:
            c.advance(t)
        assert c.done
    continued = [ex for ex in found if ex.prompt.continue_final]
    assert continued and all(ex.answer.startswith(": ") for ex in continued)


def test_a_batch_keeps_each_examples_inference_positions(tiny_small: Path) -> None:
    processor, model = _tiny(tiny_small)
    found = list(examples([V1], None, BUDGET, DataStats(), drop_retried=False))
    feats = [encode_example(processor, ex) for ex in found[:3]]
    batch = Collator(processor)([f.row() for f in feats])
    n = batch["input_ids"].shape[1]
    assert [int(m.sum()) for m in batch["attention_mask"]] == [len(f.input_ids) for f in feats]
    assert batch["input_ids"][0, -1] != batch["input_ids"][-1, -1] or n == len(feats[0].input_ids)
    assert batch["pixel_values"].shape[0] == sum(t * h * w for f in feats for t, h, w in f.grids)
    assert batch["metas"][1]["image_spans"] == feats[1].spans and batch["metas"][1]["step"] == 2
    pos, _ = model.model.get_rope_index(
        batch["input_ids"], mm_token_type_ids=batch["mm_token_type_ids"],
        image_grid_thw=batch["image_grid_thw"], attention_mask=batch["attention_mask"],
    )  # fmt: skip
    for i, ex in enumerate(found[:3]):
        alone, _ = rope_positions(model, encode(processor, ex.prompt))
        k = alone.shape[2]
        assert torch.equal(pos[:, i, :k], alone[:, 0])  # the prompt where inference puts it
    one = example_tensors(processor, feats[0])
    with torch.no_grad():
        loss = model(**{k: v for k, v in one.items() if k != "metas"}).loss
    assert torch.isfinite(loss)


def test_exported_data_is_read_back_as_the_same_examples(tiny_small: Path, tmp_path: Path) -> None:
    export_sft([V1], tmp_path / "x", drop_retried=False, pixels=BUDGET)
    processor, _ = _tiny(tiny_small)
    direct = list(examples([V1], None, BUDGET, DataStats(), drop_retried=False))
    stats = DataStats()
    back = list(export_examples(tmp_path / "x", stats))
    assert stats.steps == len(back) == len(direct) == 4
    first = [encode_example(processor, ex) for ex in (direct[0], back[0])]
    assert first[0].input_ids == first[1].input_ids  # no continued turn: identical
    for d, b in zip(direct[1:], back[1:], strict=True):
        assert b.answer == d.target and d.answer == ": \n" + d.target  # merged vs continued
    # resized-pixel points hold only for the budget they were exported for
    export_sft([V1], tmp_path / "q", dialect="qwen25vl", drop_retried=False)
    other = DataStats()
    assert list(export_examples(tmp_path / "q", other, BUDGET)) == []
    assert other.skipped == {"exported for another pixel budget": 2}


def test_train_resume_and_run_the_result(tiny_small: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "model"
    args = ["train", str(V1), "--out", str(out), "--model", str(tiny_small), "--lora",
            "--lora-rank", "4", "--max-pixels", str(BUDGET.max_pixels), "--lr", "1e-3",
            "--save-steps", "2", "--log-steps", "1", "--seed", "1"]  # fmt: skip
    assert main([*args, "--max-steps", "2"]) == 0
    first = json.loads((out / RECORD).read_text())
    assert (first["start_step"], first["steps"], first["examples"]) == (0, 2, 3)
    printed = capsys.readouterr().out
    assert "step     2/2  loss " in printed and "s/step" in printed
    assert main([*args, "--max-steps", "4"]) == 2  # not over a run without --resume
    assert "already holds a training run" in capsys.readouterr().err
    assert main([*args, "--max-steps", "4", "--resume"]) == 0
    rec = json.loads((out / RECORD).read_text())
    assert (rec["start_step"], rec["steps"], rec["lora"], rec["dialect"]) == (2, 4, True, "qwen2vl")
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged == [1, 2, 3, 4] and rec["final_loss"] == state["log_history"][-1]["loss"]
    # extended, the linear schedule is this run's: step 3 of 4 at half the peak, not 0
    assert [h["learning_rate"] for h in state["log_history"][2:]] == pytest.approx([5e-4, 2.5e-4])
    assert rec["command"][:2] == ["pixelpilot", "train"] and rec["pixels"] == [3136, 200704]
    cfg = json.loads((out / "preprocessor_config.json").read_text())
    assert (cfg["min_pixels"], cfg["max_pixels"]) == (3136, 200704)
    assert not list(out.glob("adapter_*"))  # merged: a plain checkpoint
    model = load_model(str(out))  # its own budget and dialect, from the files beside it
    assert isinstance(model, LocalModel) and model.pixels == BUDGET
    assert trained_dialect(str(out)) == "qwen2vl" and trained_dialect(str(V1)) is None
    traj = load_trajectory(V1)
    ctx = step_context(traj, traj.steps[0], BUDGET.resize(1280, 800))
    with Image.open(traj.screenshot_path(traj.steps[0]) or "") as im:
        prompt = get_dialect("qwen2vl").build_prompt("Click", [], im.convert("RGB"), ctx)
    get_dialect("qwen2vl").parse(model.generate(prompt).text, ctx)  # a valid, constrained call


def test_an_extra_loss_sees_the_batch_and_its_metas(tiny_small: Path, tmp_path: Path) -> None:
    seen: list[Any] = []

    def extra(model: Any, inputs: dict[str, Any], outputs: Any, metas: list[dict[str, Any]]) -> Any:
        seen.append((set(inputs), len(outputs.hidden_states), metas))
        start, end = metas[0]["image_spans"][-1]
        return outputs.last_hidden_state[0, start:end].pow(2).mean()  # a stand-in grounding loss

    result = train([V1], str(tiny_small), tmp_path / "m", pixels=BUDGET, max_steps=2,
                   extra_loss=extra, output_hidden_states=True, log_steps=1)  # fmt: skip
    assert len(seen) == 2 and result.steps == 2
    keys, layers, metas = seen[0]
    assert "metas" not in keys and {"input_ids", "pixel_values", "labels"} <= keys
    assert layers == 3  # embeddings + the tiny model's 2 layers
    assert {"trajectory", "step", "kind", "image_spans", "prompt_tokens"} <= set(metas[0])
    state = json.loads(next((tmp_path / "m").glob("checkpoint-*/trainer_state.json")).read_text())
    assert all("extra_loss" in h for h in state["log_history"] if "loss" in h)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty", "no trajectory (run.json) or export"),
        ("failed", "no training examples in 1 runs/exports"),
        ("dialect", "unknown dialect"),
        ("not_qwen", "is not a Qwen2-VL family model"),
        ("busy_out", "holds other files"),
        ("resume_nothing", "nothing to resume"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case: str, message: str, tiny_small: Path, tmp_path: Path, capsys: Any
) -> None:
    data, out, extra = V1, tmp_path / "out", []
    model = str(tiny_small)
    if case == "empty":
        data = tmp_path / "nothing"
        data.mkdir()
    elif case == "failed":
        data = tmp_path / "failed"
        shutil.copytree(V1, data)
        result = json.loads((data / "result.json").read_text())
        (data / "result.json").write_text(json.dumps({**result, "status": "failure"}))
    elif case == "dialect":
        extra = ["--dialect", "nope"]
    elif case == "not_qwen":
        model = str(tmp_path / "bert")
        Path(model).mkdir()
        (Path(model) / "config.json").write_text('{"model_type": "bert"}')
    elif case == "busy_out":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "resume_nothing":
        extra = ["--resume"]
    rc = main(["train", str(data), "--out", str(out), "--model", model, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_judged_run_counts_by_its_verdict_not_the_models_claim(tmp_path: Path) -> None:
    claimed = tmp_path / "claimed"  # the model said success; the scenario's checks failed
    shutil.copytree(V1, claimed)
    result = json.loads((claimed / "result.json").read_text())
    (claimed / "result.json").write_text(json.dumps({**result, "achieved": False}))
    won = tmp_path / "won"  # the model ran out of steps; MiniWoB's reward says it succeeded
    shutil.copytree(V1, won)
    (won / "result.json").write_text(json.dumps({**result, "status": "step_budget"}))
    (won / "miniwob.json").write_text(json.dumps({"success": True, "agent_status": "step_budget"}))
    stats = DataStats()
    found = list(examples([claimed, won], None, BUDGET, stats))
    assert {ex.meta["trajectory"] for ex in found} == {str(won)}
    assert stats.skipped == {"run not achieved": 4, "retried": 1}


def test_data_is_found_at_any_depth(tmp_path: Path) -> None:
    bench = tmp_path / "bench"  # pixelpilot bench miniwob --out bench
    for task, n in (("click-button", "000"), ("click-button", "001"), ("enter-text", "000")):
        shutil.copytree(V1, bench / "episodes" / task / n)
    export_sft([V1], tmp_path / "sft")
    runs, exports = find_data([bench, tmp_path / "sft", V1])
    assert [r.relative_to(tmp_path) for r in runs[:3]] == [
        Path("bench/episodes/click-button/000"), Path("bench/episodes/click-button/001"),
        Path("bench/episodes/enter-text/000")]  # fmt: skip
    assert runs[3] == V1 and exports == [tmp_path / "sft"]


def _tiny(path: Path) -> tuple[Any, Any]:
    from pixelpilot.vlm.checkpoint import load_checkpoint
    from pixelpilot.vlm.inputs import set_pixels

    processor, model = load_checkpoint(str(path), torch.device("cpu"), torch.float32, "sdpa")
    set_pixels(processor, BUDGET)
    return processor, model


def test_features_survive_a_dataset_row() -> None:
    f = Features([1, 2, 3], [-100, 2, 3], 1, [(1, 4, 4)], [(0, 4)], ["a.png"], {"step": 1})
    assert Features.from_row(f.row()) == f
