# SPDX-License-Identifier: Apache-2.0
# Thin wrapper over CMake. The README's two commands: `make run` and `make test`.

BUILD       ?= build
BUILD_TYPE  ?= RelWithDebInfo
CMAKE_ARGS  ?=
CTEST_ARGS  ?=
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CONF        ?= conf/ferry.conf
DATA        ?= ./data
FUZZ_SECONDS ?= 60

PREFIX      ?= /usr/local
DESTDIR     ?=

.PHONY: all deps build run test test-sanitize bench bench-mqtt bench-amqp bench-tls fuzz clean install

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts ferryd in the foreground on ./data with the default ports. Ctrl-C stops it cleanly.
run: build
	$(BUILD)/broker/ferryd -c $(CONF) --data-dir $(DATA)

# Every test: unit, integration (real ferryd on free ports) and crash tests.
test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900 -j $(JOBS) $(CTEST_ARGS)

# Unit, integration and interop tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize:
	$(MAKE) test BUILD=build-sanitize BUILD_TYPE=Debug \
	    CMAKE_ARGS="-DFERRY_SANITIZE=ON $(CMAKE_ARGS)" CTEST_ARGS="-L 'unit|it|interop' $(CTEST_ARGS)"

# Binaries, libferry (headers, libferry.pc), conf/ferry.conf under PREFIX/etc/ferry, the systemd
# unit under PREFIX/lib/systemd/system and the docs: `make install PREFIX=/opt/ferry`.
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)
	@echo "installed under $(DESTDIR)$(PREFIX)"

bench: build
	scripts/bench.sh $(BUILD)
	scripts/bench-native.sh $(BUILD)
	scripts/bench-mqtt.sh $(BUILD)
	scripts/bench-amqp.sh $(BUILD)

# MQTT side by side with mosquitto (docs/benchmarks.md): about 5 minutes.
bench-mqtt: build
	scripts/bench-mqtt.sh $(BUILD)

# AMQP 1.0: ferry-amqp-bench against ferryd, and RabbitMQ's AMQP 1.0 plugin when installed.
bench-amqp: build
	scripts/bench-amqp.sh $(BUILD)

# MQTT over TLS against plain TCP, side by side with mosquitto (docs/benchmarks.md): about 3 minutes.
bench-tls: build
	scripts/bench-tls.sh $(BUILD)

# libFuzzer targets (clang), each run for FUZZ_SECONDS; the table of executions and coverage
# (cov:/ft:) per target goes into docs/reliability.md.
fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DFERRY_FUZZ=ON $(CMAKE_ARGS) >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS) docs/reliability.md

# Crash loops across protocols (docs/reliability.md): ferryd SIGKILLed every 3-7 s for
# TORTURE_ROUNDS rounds under flush=sync and TORTURE_ASYNC_ROUNDS under flush=async, then
# TORTURE_TERM_ROUNDS clean stops (SIGTERM under full load, within 10 s) (~20 min), then the
# hostile clients at full size (10,000 connections; ~3 min); the results tables are written into
# docs/reliability.md.
TORTURE_ROUNDS ?= 100
TORTURE_ASYNC_ROUNDS ?= 50
TORTURE_TERM_ROUNDS ?= 30
.PHONY: torture
torture: build
	scripts/torture.sh $(BUILD) $(TORTURE_ROUNDS) $(TORTURE_ASYNC_ROUNDS) $(TORTURE_TERM_ROUNDS)

clean:
	rm -rf build build-sanitize build-fuzz

# Soak (docs/reliability.md): SOAK_MINUTES of mixed MQTT/AMQP/native traffic with consumers
# coming and going; RSS growth after the warm-up under 10 %, no descriptor leak, loop lag p99.
SOAK_MINUTES ?= 30
.PHONY: soak startup-time
soak: build
	/usr/bin/python3 tests/torture/soak.py $(BUILD)/broker/ferryd $(BUILD)/tools/ferryctl \
	    --minutes $(SOAK_MINUTES) --json $(BUILD)/soak.json --doc docs/reliability.md

# Start-up time with STARTUP_MESSAGES stored messages (written through the store API first).
STARTUP_MESSAGES ?= 10000000
startup-time: build
	/usr/bin/python3 tests/torture/startup_time.py $(BUILD)/broker/ferryd \
	    $(BUILD)/tools/ferryctl $(BUILD)/tests/fill_store --messages $(STARTUP_MESSAGES) \
	    --max-seconds 30 --starts 3
