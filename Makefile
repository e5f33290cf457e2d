# Thin wrapper over CMake + Ninja. `make run` and `make test` install what is
# missing (Debian 12), build, and run.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
LISTEN     ?= 127.0.0.1:3260
IQN        ?= iqn.2026-11.io.s3tgt:default
DATA       ?= ./data
JOBS       ?= $(shell nproc)

.PHONY: all deps build asan run test unit fuzz bench bench-s3 clean format

all: build

deps:
	@scripts/install-deps.sh build

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DS3TGT_SANITIZE=ON

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Serves a 1 GiB thin LUN in the foreground, kept as 4 MiB chunk objects under
# $(DATA)/default by the local-directory object store (the embedded default
# when no S3 endpoint is configured).
run: build
	@mkdir -p $(DATA)
	$(BUILD)/s3tgtd --listen $(LISTEN) --target $(IQN) \
		--lun "0=$(RUN_LUN_URI)"
RUN_LUN_URI ?= dir:$(abspath $(DATA))/default?size=1G

# Every configuration must build warning-free: the optimised gcc build (some
# warnings only appear at -O2) and the clang libFuzzer build, whose harnesses
# then run briefly from their seed corpora. Then unit tests, fuzz-corpus replays
# and the daemon under valgrind memcheck (plain build), and unit tests, fuzz-corpus
# replays and integration tests under ASan+UBSan.
test:
	@scripts/install-deps.sh test
	@$(MAKE) --no-print-directory build fuzz
	scripts/fuzz-smoke.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)
	cd $(BUILD) && ctest --output-on-failure -j2 -L valgrind --no-tests=error
	@$(MAKE) --no-print-directory asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j2 $(CTEST_ARGS)
FUZZ_SECONDS ?= 15

unit: asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -L 'unit|fuzz'

# The harnesses' asserts are their oracle: no NDEBUG in this build.
$(FUZZ_BUILD)/build.ninja:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS='-O1 -g' -DS3TGT_FUZZ=ON

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

# iSCSI path against tgt (bench/run.sh); S3 store, cache and s3backer on a local
# Ceph RGW (bench/s3.sh). Results: docs/BENCHMARKS.md.
bench: build
	@scripts/install-deps.sh bench
	S3TGTD=$(BUILD)/s3tgtd bench/run.sh

bench-s3: build
	@scripts/install-deps.sh bench
	S3TGTD=$(BUILD)/s3tgtd bench/s3.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
