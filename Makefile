# Thin wrappers: every target passes its variables to the one console script `zsgm`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
ZSGM    := $(BIN)/zsgm
EXTRAS  ?= test,lite,cluster,plots,tensorboard

DATA     ?=
MODEL    ?=
BACKBONE ?=
CLASSIFIER ?=
SEED     ?=
EPOCHS   ?=
SCRATCH  ?=
WEIGHTS  ?=
EXP      ?= demo
SEEDS    ?=
JOBS     ?=
EXECUTOR ?=
ARGS     ?=

opt = $(if $(2),$(1) $(2))

.PHONY: setup test test-fast gzsl extract tables bench quality clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"

$(ZSGM):
	$(MAKE) setup

test: $(ZSGM)
	$(BIN)/python -m pytest $(ARGS)

# the quick tier for development: everything but the tests marked slow
test-fast: $(ZSGM)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

gzsl: $(ZSGM)
	$(ZSGM) gzsl $(call opt,--data,$(DATA)) $(call opt,--model,$(MODEL)) $(call opt,--backbone,$(BACKBONE)) \
	  $(call opt,--classifier,$(CLASSIFIER)) $(call opt,--seed,$(SEED)) $(call opt,--epochs,$(EPOCHS)) $(ARGS)

extract: $(ZSGM)
	$(ZSGM) extract $(call opt,--backbone,$(BACKBONE)) $(call opt,--data,$(DATA)) \
	  $(if $(filter 1 yes true,$(SCRATCH)),--scratch) $(call opt,--weights,$(WEIGHTS)) $(ARGS)

tables: $(ZSGM)
	$(ZSGM) tables --exp $(EXP) $(call opt,--seeds,$(SEEDS)) $(call opt,--jobs,$(JOBS)) \
	  $(call opt,--executor,$(EXECUTOR)) $(ARGS)

bench: $(ZSGM)
	$(ZSGM) bench $(ARGS)

quality: $(ZSGM)
	$(ZSGM) quality $(call opt,--seeds,$(SEEDS)) $(call opt,--jobs,$(JOBS)) $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
