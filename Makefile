# `make train` and `make test` set up .venv from pyproject.toml on first use.
# Extra flags go through ARGS: `make train ARGS=--resume` continues an interrupted run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The shared checkout's copy of Tiny Shakespeare when it is there; otherwise the default path, which is
# downloaded on first use.
DATA ?= $(firstword $(wildcard ../shared/data/tinyshakespeare/input.txt) data/tinyshakespeare/input.txt)
KWS_DATA ?= $(firstword $(wildcard ../shared/data/speech_commands) data/speech_commands)
KWS_TEST ?= $(firstword $(wildcard ../shared/data/speech_commands_test) data/speech_commands_test)

OTHER_SPEECH ?= $(firstword $(wildcard ../shared/data/other_speech) data/other_speech)

.PHONY: data train test train-kws train-kws-stream train-custom bench-custom bench-alexa bundled-spotter bench clean \
	synth-tools browser-tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# In the project's workspace, where ../shared/data/ sits beside the checkout: link its datasets into data/ (the
# default paths of every command; nothing is copied). Elsewhere, data/README.md says where to get them.
data:
	@for d in tinyshakespeare speech_commands speech_commands_test other_speech; do \
	  if [ -e ../shared/data/$$d ] && [ ! -e data/$$d ]; then ln -s ../../shared/data/$$d data/$$d && echo "data/$$d -> ../shared/data/$$d"; fi; \
	done

# About 10 minutes on any machine: the presets train for 570 s (validation and set-up add ~25 s), on a CUDA
# GPU with its preset when there is one.
train: $(VENV)/.installed
	$(PY) train.py lm --config $$($(PY) -c "import torch; print('configs/lm_gpu.json' if torch.cuda.is_available() else 'configs/lm_cpu.json')") \
		--data $(DATA) $(ARGS)

# The speech synthesizers (Debian packages) that synthetic keyword-spotting data and its tests use: installed
# when missing and this is root (as in CI); otherwise a note, and those tests skip.
synth-tools:
	@command -v espeak-ng >/dev/null && command -v flite >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng flite >/dev/null; \
	  else echo "note: install espeak-ng and flite (apt install espeak-ng flite) for synthetic speech"; fi; }

# Debian's chromium, for the browser tests of seqapp serve (Playwright drives it; its own browser download is
# not needed): installed when missing and this is root, as in CI; otherwise a note, and those tests skip.
browser-tools:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: install chromium (apt install chromium) for the browser tests"; fi; }

test: $(VENV)/.installed synth-tools browser-tools
	$(PY) -m pytest

train-kws: $(VENV)/.installed
	$(PY) train.py kws --config configs/kws_cpu.json --data $(KWS_DATA)
	$(PY) evaluate.py kws --checkpoint runs/kws/best.pt --data $(KWS_TEST)

# The listening spotter (streaming model, mining, verifier, calibration: configs/kws_stream.json), then its
# figures: clips of the canonical test set, a 20-minute test stream, 30 minutes of other words over louder
# noise, and the held-out LibriSpeech sentences back to back (all over held-out noise).
train-kws-stream: $(VENV)/.installed synth-tools
	$(PY) train.py kws --config configs/kws_stream.json --data $(KWS_DATA) --other-speech $(OTHER_SPEECH)
	$(PY) evaluate.py kws --checkpoint runs/kws_stream/best.pt --data $(KWS_TEST)
	$(PY) -m seqapp make-stream --data $(KWS_TEST) --noise $(KWS_DATA)/_background_noise_ --minutes 20 --seed 1 --out runs/streams/test20.wav
	$(PY) -m seqapp make-stream --data $(KWS_TEST) --noise $(KWS_DATA)/_background_noise_ --minutes 30 --seed 2 \
		--keyword-share 0 --max-noise 0.3 --out runs/streams/free30.wav
	$(PY) -m seqapp make-stream --speech $(OTHER_SPEECH) --noise $(KWS_DATA)/_background_noise_ --seed 3 --out runs/streams/speech_test.wav
	$(PY) evaluate.py kws --checkpoint runs/kws_stream/best.pt --stream runs/streams/test20.wav --labels runs/streams/test20.csv
	$(PY) evaluate.py kws --checkpoint runs/kws_stream/best.pt --stream runs/streams/free30.wav --labels runs/streams/free30.csv
	$(PY) evaluate.py kws --checkpoint runs/kws_stream/best.pt --stream runs/streams/speech_test.wav --labels runs/streams/speech_test.csv

# A spotter of your own words from text alone (configs/kws_custom.json), and its benchmark on real voices: the
# Picovoice benchmark's clips of the three words (the first 20 of each set aside as --recordings), over noise,
# against the keyword-free streams of train-kws-stream and two hours of the canonical test set's words (none is
# a custom keyword); PocketSphinx beside it on the first two (pip install '.[bench]').
CUSTOM ?= computer,jarvis,smart mirror
train-custom: $(VENV)/.installed synth-tools
	$(PY) train.py kws --keywords "$(CUSTOM)" --data $(KWS_DATA) --other-speech $(OTHER_SPEECH) --out runs/custom

CUSTOM_FREE = --free runs/streams/free30.wav --free runs/streams/speech_test.wav --free runs/custom_bench/free_test120.wav
bench-custom: $(VENV)/.installed
	$(PY) bench/speech/wake_word_streams.py --keywords "$(CUSTOM)" --wake-words $(OTHER_SPEECH)/wake_words \
		--noise $(KWS_DATA)/_background_noise_ --out runs/custom_bench
	$(PY) -m seqapp make-stream --data $(KWS_TEST) --noise $(KWS_DATA)/_background_noise_ --keywords "$(CUSTOM)" \
		--keyword-share 0 --minutes 120 --max-noise 0.3 --seed 4 --out runs/custom_bench/free_test120.wav
	$(PY) bench/speech/stream_curve.py --model "from text=runs/custom/best.pt" --keywords runs/custom_bench/wake_words.wav \
		$(CUSTOM_FREE) --out runs/custom_bench/curve.png
	$(PY) bench/speech/wake_word_curve.py --curve runs/custom_bench/curve.json $(CUSTOM_FREE) --out runs/custom_bench/wake_word_curve.png
	$(PY) bench/speech/operating_points.py --model "from text=runs/custom/best.pt" --keywords runs/custom_bench/wake_words.wav \
		$(CUSTOM_FREE) --json runs/custom_bench/points.json
	$(PY) bench/speech/pocketsphinx_streams.py --keywords "$(CUSTOM)" --stream runs/custom_bench/wake_words.wav \
		--free runs/streams/free30.wav --free runs/streams/speech_test.wav --json runs/custom_bench/pocketsphinx.json

# The peer beside it: seqapp trained with --keywords alexa from text alone, and openWakeWord 0.4.0's pretrained
# alexa (pip install '.[peer]'; its models are CC BY-NC-SA: a peer here, never bundled or trained on), on the
# same streams: the real alexa clips over noise, and the keyword-free streams that train-kws-stream and
# bench-custom build (run those first).
bench-alexa: $(VENV)/.installed synth-tools
	$(PY) -m pip install -q -e '.[peer]'
	$(PY) bench/speech/wake_word_streams.py --keywords alexa --wake-words $(OTHER_SPEECH)/wake_words \
		--noise $(KWS_DATA)/_background_noise_ --out runs/alexa_bench
	$(PY) train.py kws --keywords alexa --data $(KWS_DATA) --other-speech $(OTHER_SPEECH) --out runs/alexa
	$(PY) bench/speech/stream_curve.py --model "from text=runs/alexa/best.pt" --keywords runs/alexa_bench/wake_words.wav \
		$(CUSTOM_FREE) --out runs/alexa_bench/curve.png
	$(PY) bench/speech/openwakeword_streams.py --model alexa --keyword alexa --stream runs/alexa_bench/wake_words.wav \
		$(CUSTOM_FREE) --json runs/alexa_bench/openwakeword.json
	$(PY) bench/speech/wake_word_curve.py --curve runs/alexa_bench/curve.json --openwakeword runs/alexa_bench/openwakeword.json \
		$(CUSTOM_FREE) --out runs/alexa_bench/wake_word_curve.png

# The listening spotter that ships inside seqapp (seqapp/speech/models/listening.onnx): the listening preset,
# exported for onnxruntime. `seqapp listen` and `seqapp spot --stream` run it when no checkpoint is given.
bundled-spotter: train-kws-stream
	$(PY) -m seqapp export --checkpoint runs/kws_stream/best.pt --out seqapp/speech/models/listening.onnx --weights int8

bench: $(VENV)/.installed
	$(PY) bench/lm/train_speed.py --data $(DATA)

clean:
	rm -rf runs build *.egg-info
