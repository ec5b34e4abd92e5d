# FlashAttention, step by step, in C and CUDA.
# One plain Makefile: `make help` lists the targets.

# ---- configuration (override on the command line) ------------------------
comma       := ,
CC          ?= gcc
CFLAGS      ?= -O3 -g
LDFLAGS     ?=
# Strict build: every warning is an error, for C and for both sides of CUDA
# (WERROR=0 turns the errors back into warnings, e.g. while editing).
WERROR      ?= 1
WARN        := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)
NVWARN      := $(if $(filter 1,$(WERROR)),-Werror all-warnings -Xcompiler -Wall$(comma)-Wextra$(comma)-Werror,-Xcompiler -Wall$(comma)-Wextra)
NVCC        ?= $(shell command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
CUDA_HOME   ?= $(if $(NVCC),$(patsubst %/bin/nvcc,%,$(NVCC)),/usr/local/cuda)
GPU_ARCHS   ?= 75 80 90
NVCCFLAGS   ?= -O3 -g -lineinfo
CHECK_CFLAGS ?=
CHECK_LIBS  ?= -lcheck -lsubunit -lm -lrt -lpthread
BUILD       ?= build
# `make fuzz`: libFuzzer needs clang; each target runs FUZZ_SECONDS
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60
# `make exercise EX=02` builds exercises/02_*/ in place of steps/02_*/
EX          ?=

GENCODE     := $(foreach a,$(GPU_ARCHS),-gencode arch=compute_$(a),code=sm_$(a))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/targets/x86_64-linux/lib $(CUDA_HOME)/lib64))
CUDA_LINK   := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart_static -ldl -lrt -lpthread
ALL_CFLAGS  := -std=c11 $(CFLAGS) $(WARN) -Icommon
ALL_NVFLAGS := -std=c++17 $(NVCCFLAGS) $(GENCODE) -Icommon $(NVWARN)

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
LIB := $(BUILD)/lib

# ---- sources -------------------------------------------------------------
COMMON_C    := $(wildcard common/*.c)
COMMON_CU   := $(wildcard common/*.cu)
COMMON_OBJ  := $(patsubst common/%.c,$(OBJ)/common/%.o,$(COMMON_C))
COMMON_GOBJ := $(patsubst common/%.cu,$(OBJ)/common/%.o,$(COMMON_CU))

STEP_DIRS   := $(sort $(notdir $(wildcard steps/[0-9][0-9]_*)))
CPU_STEPS   := $(foreach s,$(STEP_DIRS),$(if $(wildcard steps/$(s)/attention.c),$(s)))
GPU_STEPS   := $(foreach s,$(STEP_DIRS),$(if $(wildcard steps/$(s)/attention.cu),$(s)))
# the source of a step: the exercise's when EX names it, else the step's
src_of = $(if $(and $(EX),$(filter $(EX)_%,$(1))),$(wildcard exercises/$(1)/attention.c*),$(wildcard steps/$(1)/attention.c*))

CPU_LIB_OBJ := $(foreach s,$(CPU_STEPS),$(OBJ)/steps/$(s).o)
GPU_LIB_OBJ := $(foreach s,$(GPU_STEPS),$(OBJ)/steps/$(s).o)
CPU_PROGS   := $(foreach s,$(CPU_STEPS),$(BIN)/$(s))
GPU_PROGS   := $(foreach s,$(GPU_STEPS),$(BIN)/$(s))

TEST_CPU_SRC := tests/test_main.c tests/test_common.c tests/conformance.c $(wildcard tests/test_0[1-37]*.c)
TEST_CPU_OBJ := $(patsubst tests/%.c,$(OBJ)/tests/%.o,$(TEST_CPU_SRC))

ifneq ($(NVCC),)
HAVE_CUDA := 1
PROGS     := $(CPU_PROGS) $(GPU_PROGS)
TESTS     := $(BIN)/test_cpu $(if $(wildcard tests/test_gpu.c),$(BIN)/test_gpu)
LIB_OBJ   := $(COMMON_OBJ) $(COMMON_GOBJ) $(CPU_LIB_OBJ) $(GPU_LIB_OBJ)
else
PROGS     := $(CPU_PROGS)
TESTS     := $(BIN)/test_cpu
LIB_OBJ   := $(COMMON_OBJ) $(CPU_LIB_OBJ)
endif

# ---- step 07 (backward): one step, three sources ---------------------------
# steps/07_backward/attention.cu (the kernel; the step's main source, built by
# the generic rules above) plus backward_cpu.c (the same algorithm on the CPU:
# linked into test_cpu and the library, so CI runs it without nvcc) and
# standard_cublas.cu (the stored-P cuBLAS baseline). The step program and the
# GPU suite test_gpu_07 link step 06, the forward they differentiate.
# `make exercise EX=07` swaps in exercises/07_backward/backward_cpu.c and is
# graded by the CPU suite step07 (EX_GPU_STEPS leaves 07 out).
STEP07_CPU_SRC := $(if $(filter 07,$(EX)),exercises/07_backward/backward_cpu.c,steps/07_backward/backward_cpu.c)
STEP07_CPU_OBJ := $(if $(wildcard steps/07_backward/backward_cpu.c),$(OBJ)/steps/07_backward/backward_cpu.o)
STEP07_GPU_OBJ := $(OBJ)/steps/07_backward/standard_cublas.o
EX_GPU_STEPS   := $(filter-out 07_backward,$(GPU_STEPS))
COMMON_BWD_H   := common/backward.h
$(OBJ)/steps/07_backward/backward_cpu.o: $(STEP07_CPU_SRC) common/attn.h common/common.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(OBJ)/steps/07_backward/standard_cublas.o: steps/07_backward/standard_cublas.cu common/attn.h common/common.h $(COMMON_BWD_H) common/cuda_check.h
	@mkdir -p $(@D)
	$(NVCC) $(ALL_NVFLAGS) -c $< -o $@
$(OBJ)/steps/07_backward.o $(OBJ)/steps/07_backward.main.o $(OBJ)/common/driver_bwd.o $(OBJ)/common/gpu_bwd_host.o: $(COMMON_BWD_H)
ifneq ($(NVCC),)
$(BIN)/07_backward: $(OBJ)/steps/06_fa2_warp.o $(STEP07_GPU_OBJ)
$(BIN)/test_gpu_07: $(OBJ)/tests/test_gpu_07.o $(OBJ)/tests/conformance.o $(STEP07_CPU_OBJ) $(STEP07_GPU_OBJ) $(CPU_LIB_OBJ) $(GPU_LIB_OBJ) $(COMMON_OBJ) $(COMMON_GOBJ)
	@mkdir -p $(@D)
	$(CXX) $^ -o $@ $(CUDA_LINK) $(CHECK_LIBS) -lm
TESTS   += $(if $(wildcard tests/test_gpu_07.c),$(BIN)/test_gpu_07)
LIB_OBJ += $(STEP07_CPU_OBJ) $(STEP07_GPU_OBJ)
else
LIB_OBJ += $(STEP07_CPU_OBJ)
endif
# ---- end of step 07 ---------------------------------------------------------

.PHONY: all run test docs lib diff exercise bench clean help deps-check deps-docs deps-plot deps-fuzz deps-lint nvcc-notice fuzz lint
.DEFAULT_GOAL := all

all: nvcc-notice $(PROGS) $(TESTS) lib

nvcc-notice:
	@$(if $(HAVE_CUDA),true,echo "notice: nvcc not found: skipping the CUDA steps ($(GPU_STEPS)) and the GPU suites")

help:
	@echo "make            build every step program (build/bin/NN_name), the suites and the library"
	@echo "make run        the tour: every step in order on one problem, each checked against the prior one"
	@echo "make test       the Check suites (CPU; GPU too where nvcc and a GPU exist), one total line"
	@echo "make docs       Doxygen HTML (code + notes) in build/docs/html"
	@echo "make lib        build/lib/libattn.a (common/ + every step; header common/attn.h)"
	@echo "make diff FROM=02 TO=03     what one step adds over another"
	@echo "make exercise EX=02         build exercises/02_*/ in place of the step and run its suite"
	@echo "make bench      sweep N, D, causal for every built step: table + CSV (+ plots) in build/bench/;"
	@echo "                step 07's trade-off table (test_gpu_07 --bench) in build/bench/step07.txt"
	@echo "make fuzz       libFuzzer on the .npy reader and the CLI, FUZZ_SECONDS (60) each, in build/fuzz/"
	@echo "make lint       cppcheck and clang-tidy (configuration: .clang-tidy, tests/lint/)"
	@echo "make clean      remove build/"
	@echo "variables: GPU_ARCHS='$(GPU_ARCHS)' CHECK_CFLAGS='$(CHECK_CFLAGS)' CHECK_LIBS='$(CHECK_LIBS)' CFLAGS='$(CFLAGS)'"
	@echo "           WERROR=$(WERROR) (0: warnings are not errors) FUZZ_SECONDS=$(FUZZ_SECONDS)"

# ---- compile -------------------------------------------------------------
$(OBJ)/common/%.o: common/%.c common/attn.h common/common.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OBJ)/common/%.o: common/%.cu common/attn.h common/common.h common/cuda_check.h common/gpu_host.h
	@mkdir -p $(@D)
	$(NVCC) $(ALL_NVFLAGS) -c $< -o $@

CMD.c  = $(CC) $(ALL_CFLAGS)
CMD.cu = $(NVCC) $(ALL_NVFLAGS)
# a step twice: once for the library and the suites, once with its main()
define STEP_RULES
$(OBJ)/steps/$(1).o: $(call src_of,$(1)) common/attn.h common/common.h
	@mkdir -p $$(@D)
	$$(CMD$$(suffix $$<)) -c $$< -o $$@
$(OBJ)/steps/$(1).main.o: $(call src_of,$(1)) common/attn.h common/common.h
	@mkdir -p $$(@D)
	$$(CMD$$(suffix $$<)) -DATTN_STEP_MAIN -c $$< -o $$@
endef
$(foreach s,$(STEP_DIRS),$(eval $(call STEP_RULES,$(s))))

$(OBJ)/tests/%.o: tests/%.c tests/conformance.h common/attn.h common/common.h | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c $< -o $@

# ---- link ----------------------------------------------------------------
$(CPU_PROGS): $(BIN)/%: $(OBJ)/steps/%.main.o $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ -lm

$(GPU_PROGS): $(BIN)/%: $(OBJ)/steps/%.main.o $(COMMON_OBJ) $(COMMON_GOBJ)
	@mkdir -p $(@D)
	$(CXX) $^ -o $@ $(CUDA_LINK) -lm


$(BIN)/test_cpu: $(TEST_CPU_OBJ) $(CPU_LIB_OBJ) $(STEP07_CPU_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(CHECK_LIBS) -lm

$(BIN)/test_gpu: $(OBJ)/tests/test_gpu.o $(OBJ)/tests/conformance.o $(CPU_LIB_OBJ) $(GPU_LIB_OBJ) $(COMMON_OBJ) $(COMMON_GOBJ)
	@mkdir -p $(@D)
	$(CXX) $^ -o $@ $(CUDA_LINK) $(CHECK_LIBS) -lm

lib: $(LIB)/libattn.a
$(LIB)/libattn.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
	@echo "built $@ ($(words $^) objects; header: common/attn.h)"

# ---- run, test, docs, bench ----------------------------------------------
run: nvcc-notice $(PROGS)
	@BIN=$(BIN) sh tests/tour.sh $(STEP_DIRS)

test: nvcc-notice $(TESTS) $(if $(HAVE_CUDA),$(GPU_PROGS))
	@BIN=$(BIN) sh tests/run_suites.sh test_cpu:step01 test_cpu:step02 test_cpu:step03 test_cpu:step07 test_cpu:common \
	   $(if $(filter %test_gpu,$(TESTS)),test_gpu) $(if $(filter %test_gpu_07,$(TESTS)),test_gpu_07) \
	   $(if $(HAVE_CUDA),tests/no_device.sh)

# ---- fuzzing: clang -fsanitize=fuzzer,address,undefined ------------------
FUZZ_FLAGS := -std=c11 -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer -Icommon
$(BUILD)/fuzz/fuzz_npy: tests/fuzz/fuzz_npy.c common/npy.c common/mem.c common/common.h common/attn.h | deps-fuzz
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) -o $@ -lm
$(BUILD)/fuzz/fuzz_cli: tests/fuzz/fuzz_cli.c common/cli.c common/problem.c common/common.h common/attn.h | deps-fuzz
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) -o $@ -lm

fuzz: $(BUILD)/fuzz/fuzz_npy $(BUILD)/fuzz/fuzz_cli
	@sh tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS) npy cli

# ---- static checks: cppcheck and clang-tidy on every C source ---------------
# Configuration: .clang-tidy (the check set, and why some are off) and
# tests/lint/cppcheck.supp; a false positive on one line is suppressed on
# that line with a `cppcheck-suppress` comment saying why. Both fail on any
# finding. (CUDA sources are checked by nvcc's -Werror all-warnings.)
CLANG_TIDY  ?= clang-tidy
LINT_C      := $(sort $(wildcard common/*.c steps/*/*.c exercises/*/*.c tests/*.c tests/fuzz/*.c))
lint: deps-lint
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,style,performance,portability \
	   --inline-suppr --suppressions-list=tests/lint/cppcheck.supp -Icommon -Itests \
	   --template='{file}:{line}: {severity}: {message} [{id}]' $(LINT_C)
	@echo "cppcheck: clean ($(words $(LINT_C)) files)"
	@printf '%s\n' $(LINT_C) | xargs -P "$$(nproc 2>/dev/null || echo 2)" -n 4 \
	   sh -c 'out=$$($(CLANG_TIDY) --quiet "$$@" -- -std=c11 -Icommon -Itests 2>&1); rc=$$?; \
	          printf "%s\n" "$$out" | grep -v -e "warnings\? generated" -e "^$$" >&2; exit $$rc' sh
	@echo "clang-tidy: clean ($(words $(LINT_C)) files; checks in .clang-tidy)"

deps-fuzz:
	@sh tests/ensure-deps.sh fuzz
deps-lint:
	@sh tests/ensure-deps.sh lint
deps-check:
	@sh tests/ensure-deps.sh check
deps-docs:
	@sh tests/ensure-deps.sh doxygen
deps-plot:
	@sh tests/ensure-deps.sh gnuplot || true

docs: deps-docs
	@mkdir -p $(BUILD)/docs
	doxygen Doxyfile
	@echo "docs: $(BUILD)/docs/html/index.html"

bench: $(PROGS) $(filter %test_gpu_07,$(TESTS)) deps-plot
	python3 tests/bench/sweep.py --bin $(BIN) --out $(BUILD)/bench
	@if [ -x $(BIN)/test_gpu_07 ]; then $(BIN)/test_gpu_07 --bench | tee $(BUILD)/bench/step07.txt; fi

diff:
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make diff FROM=02 TO=03"; exit 2; }
	@a=$$(ls steps/$(FROM)_*/attention.c* 2>/dev/null); b=$$(ls steps/$(TO)_*/attention.c* 2>/dev/null); \
	 test -n "$$a" -a -n "$$b" || { echo "no step $(FROM) or $(TO) under steps/"; exit 2; }; \
	 diff -u "$$a" "$$b" || true

exercise:
	@test -n "$(EX)" || { echo "usage: make exercise EX=02"; exit 2; }
	@ls -d exercises/$(EX)_* >/dev/null 2>&1 || { echo "no exercise $(EX) under exercises/"; exit 2; }
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/exercise-$(EX) EX=$(EX) \
	   $(if $(filter $(EX)_%,$(EX_GPU_STEPS)),$(BUILD)/exercise-$(EX)/bin/test_gpu,$(BUILD)/exercise-$(EX)/bin/test_cpu)
	@suite=step$(EX); bin=$(BUILD)/exercise-$(EX)/bin/$(if $(filter $(EX)_%,$(EX_GPU_STEPS)),test_gpu,test_cpu); \
	 echo "grading exercise $(EX) with suite $$suite ($$bin)"; CK_RUN_SUITE=$$suite $$bin

clean:
	rm -rf $(BUILD)
