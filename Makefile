# Two entry points for people: `make demo` (set up, then run the main job) and `make test`
# (set up, then run the style/type gate and the test suite). Both work from a clean clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.metarl-installed
export MUJOCO_GL ?= egl
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test lint slow bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# torch first, pinned: pip takes the CPU wheel on disk; a bare `torch` would pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: a short meta-training run (2-D navigation), then the shipped grasp checkpoint adapted
# to an object it never saw (a bottle: no bottle is in the training distribution), kept and rendered
# (one rollout per panel; seed 1's draw fails before adapting and after one step and lifts the bottle
# level after two and three, as 95 % of rollouts after three steps do; see README).
DEMO_OBJECT := bottle length=0.22 radius=0.03 neck=0.012 neck_length=0.07 mass=0.3

demo: setup
	$(BIN)/metarl train experiments/navigation.yaml --set run.iterations=30 --run-dir runs/demo --overwrite
	$(BIN)/metarl evaluate runs/demo/checkpoints/final.pt --tasks test --steps 3
	$(BIN)/metarl render runs/demo/checkpoints/final.pt --task "goal=0.35,-0.25" --out videos/demo-navigation.mp4
	$(BIN)/metarl adapt experiments/checkpoints/grasp_object.pt --object "$(DEMO_OBJECT)" --steps 3 \
	  --save runs/demo/grasp-bottle.pt
	$(BIN)/metarl render runs/demo/grasp-bottle.pt --steps 0,1,2,3 --explore --seed 1 --out videos/demo-grasp.mp4

# mypy cannot see setup.cfg's package_dir (metarl.envs lives in envs/), so it checks a throwaway tree
# build/typecheck/metarl of links laid out as the installed package; errors are shown at the real paths.
# After one `make lint`, a bare `.venv/bin/mypy` checks the same tree.
TYPECHECK := build/typecheck

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/metarl
	for f in metarl/*; do case $$f in */__pycache__) ;; *) ln -s ../../../$$f $(TYPECHECK)/$$f;; esac; done
	ln -s ../../../envs $(TYPECHECK)/metarl/envs
	$(BIN)/mypy > $(TYPECHECK)/report.txt; status=$$?; \
	  sed -e 's|^$(TYPECHECK)/metarl/envs/|envs/|' -e 's|^$(TYPECHECK)/metarl/|metarl/|' $(TYPECHECK)/report.txt; \
	  exit $$status

test: lint
	$(BIN)/pytest

slow: setup
	$(BIN)/pytest -m slow

bench: setup
	$(BIN)/metarl bench --family Navigation2D

clean:
	rm -rf $(VENV) runs build *.egg-info
