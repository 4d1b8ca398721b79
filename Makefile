# qkv — one build command: `make` leaves ./qkv in the repository root.
#
#   make          library (build/libqkv.a) and the command-line program ./qkv
#   make test     installs dependencies, builds, runs the unit suite twice:
#                 optimised, then under AddressSanitizer + UBSan
#   make demo     installs dependencies, builds, runs the main job
#   make bench    builds the benchmarks in bench/ (run them by hand)
#
# Every .c under src/ goes into the library, every .c under cli/ into ./qkv and
# every tests/test_*.c becomes its own test program: adding a file needs no
# edit here.
#
# The build is portable: every file is compiled for baseline x86-64, except
# the kernel paths under src/kernels/avx2/ and src/kernels/avx512/, each with
# its own instruction-set flags (ISA_FLAGS below); the path is chosen when
# qkv starts (src/kernels/dispatch.c). `make ARCH=-march=native` compiles
# everything for this machine instead (local tuning only: the binary may
# then not run on another CPU).

CC      ?= cc
ARCH    ?=
OPT     ?= -O3
WARN    := -Wall -Wextra -Wno-unused-parameter
DEPFLAGS = -MMD -MP
BLAS_INC := -I/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) $(WARN) -fopenmp -g -Iinclude -Isrc $(BLAS_INC) $(EXTRA_CFLAGS)
LDLIBS  := -fopenmp -lopenblas -ldnnl -lcjson -lmicrohttpd -lm -lpthread

SAN_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(ARCH) $(WARN) -fopenmp -Iinclude -Isrc $(BLAS_INC) \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_LDLIBS := -fsanitize=address,undefined $(LDLIBS)

LIB_SRC  := $(sort $(wildcard src/*/*.c src/kernels/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_LIB := tests/testlib.c
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=build/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=build/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=build/tests/%)
SAN_LIB_OBJ := $(LIB_SRC:%.c=build-san/%.o)
SAN_TEST_BIN := $(TEST_SRC:tests/%.c=build-san/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=build/bench/%)

.PHONY: all test tests san-tests demo bench clean deps
all: qkv

deps:
	@scripts/install-deps

build/libqkv.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

build-san/libqkv.a: $(SAN_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Instruction-set flags of the kernel paths (keep in sync with the paths
# of src/kernels/isa.h and the checks in src/kernels/cpu.c).
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mprefer-vector-width=512
build/src/kernels/avx2/%.o build-san/src/kernels/avx2/%.o: ISA_FLAGS := $(AVX2_FLAGS)
build/src/kernels/avx512/%.o build-san/src/kernels/avx512/%.o: ISA_FLAGS := $(AVX512_FLAGS)

# Objects are rebuilt when the flags change (ARCH=..., OPT=...): a stamp
# holds the flags of the last build.
FLAGS_STAMP := build/flags.stamp
$(shell mkdir -p build && echo '$(CC) $(CFLAGS) $(SAN_CFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(CFLAGS) $(SAN_CFLAGS)' > $(FLAGS_STAMP))

build/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) $(DEPFLAGS) -c $< -o $@

build-san/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) $(ISA_FLAGS) $(DEPFLAGS) -c $< -o $@

qkv: $(CLI_OBJ) build/libqkv.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) build/libqkv.a $(LDLIBS)

build/tests/%: tests/%.c $(TEST_LIB) build/libqkv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -Itests -o $@ $< $(TEST_LIB) build/libqkv.a $(LDLIBS)

build-san/tests/%: tests/%.c $(TEST_LIB) build-san/libqkv.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) $(DEPFLAGS) -Itests -o $@ $< $(TEST_LIB) build-san/libqkv.a $(SAN_LDLIBS)

build/bench/%: bench/%.c build/libqkv.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< build/libqkv.a $(LDLIBS)

tests: $(TEST_BIN)
san-tests: $(SAN_TEST_BIN)
bench: $(BENCH_BIN)

test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all tests san-tests
	@tests/run build/tests build-san/tests

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo

clean:
	rm -rf build build-san qkv

-include $(shell find build build-san -name '*.d' 2>/dev/null)
