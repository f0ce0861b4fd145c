#!/usr/bin/env bash
# Rebuilds the built-in demo model (vlm/demo_model, `--model demo`, the default of `pixelpilot
# demo`) from nothing, on a CPU: the DOM reference policy's episodes on two MiniWoB++ tasks,
# then a small Qwen2-VL trained from scratch with the grounding recipe, then the held-out bench.
# docs/training.md has what each stage took on a 2-core machine and the success rates.
#
#   bash scripts/build_demo_model.sh            # all stages; each is skipped once it is done
#   STEPS=1200 WORK=data/demo bash scripts/build_demo_model.sh
#
# Training writes a checkpoint every 100 steps: run the script again to go on after a stop (a
# recording or bench stopped half-way is started again after deleting its folder).
set -euo pipefail
WORK=${WORK:-data/demo}
STEPS=${STEPS:-1200}
TASKS=click-test,focus-text
mkdir -p "$WORK"

# 1. 1,000 episodes per task, seeds 100000-100999 (the demo and the bench draw theirs below).
if [ ! -f "$WORK/episodes/results.json" ]; then
  pixelpilot bench miniwob --model dom-oracle --tasks "$TASKS" --episodes 1000 --seed 100000 \
    --observe task --workers 2 --no-reports --out "$WORK/episodes"
fi

# 2. From scratch: a domain tokenizer and random weights (vlm/scratch.py), then the grounding
#    recipe (agent/train_grounding.py); `--resume` goes on from the last checkpoint.
if [ ! -f "$WORK/model/pixelpilot-train.json" ]; then  # written when training ends
  resume=""; [ -d "$WORK/model" ] && resume="--resume"
  pixelpilot train "$WORK/episodes" --model scratch --grounding --max-steps "$STEPS" \
    --out "$WORK/model" $resume
fi

# 3. Held-out seeds 0-99 of each task, judged by MiniWoB's reward.
if [ ! -f "$WORK/bench/results.json" ]; then
  pixelpilot bench miniwob --model "$WORK/model#qwen2vl" --tasks "$TASKS" --episodes 100 \
    --seed 0 --observe task --no-reports --out "$WORK/bench"
fi

# 4. Into the package: the checkpoint files, and the record of how it was made with the bench's
#    per-task rows added.
dest=$(python3 -c "from pixelpilot.vlm.registry import DEMO_DIR; print(DEMO_DIR)")
mkdir -p "$dest"
for f in config.json generation_config.json model.safetensors tokenizer.json \
         tokenizer_config.json chat_template.jinja processor_config.json; do
  cp "$WORK/model/$f" "$dest/"
done
python3 - "$WORK" "$dest" <<'PY'
import json, sys
work, dest = sys.argv[1:]
record = json.load(open(f"{work}/model/pixelpilot-train.json"))
record["bench"] = json.load(open(f"{work}/bench/results.json"))["tasks"]
json.dump(record, open(f"{dest}/pixelpilot-train.json", "w"), indent=1)
PY
du -sh "$dest"
