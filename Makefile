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
# `make docs`: where MathJax 2 is (Debian's libjs-mathjax)
MATHJAX_DIR ?= /usr/share/javascript/mathjax
# `make exercise EX=02` builds exercises/02_*/ in place of steps/02_*/
EX          ?=

GENCODE     := $(foreach a,$(GPU_ARCHS),-gencode arch=compute_$(a),code=sm_$(a))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/targets/x86_64-linux/lib $(CUDA_HOME)/lib64))
CUDA_LINK   := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublas -lcudart_static -ldl -lrt -lpthread
ALL_CFLAGS  := -std=c11 $(CFLAGS) $(WARN) -Icommon
ALL_NVFLAGS_NOARCH := -std=c++17 $(NVCCFLAGS) -Icommon $(NVWARN)
ALL_NVFLAGS := $(ALL_NVFLAGS_NOARCH) $(GENCODE)

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
LIB := $(BUILD)/lib

# ---- sources: found by pattern ------------------------------------------
# A step is a folder steps/NN_name/ with a step.mk (notes/design.md, "How a
# step is added"): STEP_SRCS its sources (.c: CPU, .cu: GPU), STEP_MAIN the
# one that holds main() under -DATTN_STEP_MAIN, STEP_LINKS the steps whose
# objects its program links too (07 links 06, the forward it
# differentiates), STEP_ARCHS its GPU architectures (default GPU_ARCHS),
# STEP_DESC its descriptor's symbol (default attnNN_step; what the step
# computes is in the descriptor itself, attn_step.kind), STEP_BASE /
# STEP_IDEA / STEP_INTRODUCES for `make diff`.
COMMON_C    := $(wildcard common/*.c)
COMMON_CU   := $(wildcard common/*.cu)
COMMON_H    := $(wildcard common/*.h common/device/*.cuh)
COMMON_OBJ  := $(patsubst common/%.c,$(OBJ)/common/%.o,$(COMMON_C))
COMMON_GOBJ := $(patsubst common/%.cu,$(OBJ)/common/%.o,$(COMMON_CU))

STEP_DIRS   := $(sort $(notdir $(patsubst %/step.mk,%,$(wildcard steps/[0-9][0-9]_*/step.mk))))
# read_step S: steps/S/step.mk into S_SRCS, S_MAIN, S_LINKS, S_ARCHS
define read_step
STEP_SRCS :=
STEP_MAIN :=
STEP_LINKS :=
STEP_ARCHS :=
STEP_DESC :=
include steps/$(1)/step.mk
$(1)_SRCS  := $$(STEP_SRCS)
$(1)_MAIN  := $$(STEP_MAIN)
$(1)_LINKS := $$(foreach n,$$(STEP_LINKS),$$(filter $$(n)_%,$(STEP_DIRS)))
$(1)_ARCHS := $$(or $$(STEP_ARCHS),$$(GPU_ARCHS))
$(1)_DESC  := $$(or $$(STEP_DESC),attn$$(firstword $$(subst _, ,$(1)))_step)
endef
$(foreach s,$(STEP_DIRS),$(eval $(call read_step,$(s))))

# Where a step's sources are compiled from: its folder, or for `make
# exercise EX=NN` a copy of it under $(BUILD)/overlay/ in which every file
# the exercise folder has replaces the step's (exercises/NN_*/kernel.cuh …).
is_ex    = $(and $(EX),$(filter $(EX)_%,$(1)))
src_dir  = $(if $(call is_ex,$(1)),$(BUILD)/overlay/$(1),steps/$(1))
# obj_of S FILE: the library object of one source of step S
obj_of   = $(OBJ)/steps/$(1)/$(basename $(2)).o
# every file of step S (headers too: an exercise may replace kernel.cuh)
files_of = $(notdir $(wildcard steps/$(1)/*.c steps/$(1)/*.cu steps/$(1)/*.cuh steps/$(1)/*.h))

is_gpu_step = $(filter %.cu,$($(1)_MAIN))
CPU_STEPS   := $(foreach s,$(STEP_DIRS),$(if $(call is_gpu_step,$(s)),,$(s)))
GPU_STEPS   := $(foreach s,$(STEP_DIRS),$(if $(call is_gpu_step,$(s)),$(s)))
# library objects: every source of every step (CPU ones link without CUDA)
CPU_LIB_OBJ := $(foreach s,$(STEP_DIRS),$(foreach f,$(filter %.c,$($(s)_SRCS)),$(call obj_of,$(s),$(f))))
GPU_LIB_OBJ := $(foreach s,$(STEP_DIRS),$(foreach f,$(filter %.cu,$($(s)_SRCS)),$(call obj_of,$(s),$(f))))
CPU_PROGS   := $(foreach s,$(CPU_STEPS),$(BIN)/$(s))
GPU_PROGS   := $(foreach s,$(GPU_STEPS),$(BIN)/$(s))

# Suites: tests/test_NN*.c are CPU suites (one binary, test_cpu);
# tests/test_gpu*.c are GPU suites, a binary each.
# tests/test_NN.c is suite stepNN; tests/test_name.c (npy, cli, program, …)
# is suite name; test_main.c runs them all.
CPU_SUITE_SRC := $(filter-out tests/test_gpu% tests/test_main.c,$(wildcard tests/test_*.c))
TEST_CPU_SRC := tests/test_main.c tests/conformance.c tests/gradcheck.c tests/util.c $(CPU_SUITE_SRC)
TEST_CPU_OBJ := $(patsubst tests/%.c,$(OBJ)/tests/%.o,$(TEST_CPU_SRC))
GPU_SUITES   := $(patsubst tests/%.c,%,$(wildcard tests/test_gpu*.c))
CPU_SUITES   := $(foreach n,$(patsubst tests/test_%.c,%,$(CPU_SUITE_SRC)),$(if $(filter 0% 1%,$(n)),step$(n),$(n)))

ifneq ($(NVCC),)
HAVE_CUDA := 1
PROGS     := $(CPU_PROGS) $(GPU_PROGS)
TESTS     := $(BIN)/test_cpu $(foreach t,$(GPU_SUITES),$(BIN)/$(t))
LIB_OBJ   := $(COMMON_OBJ) $(COMMON_GOBJ) $(CPU_LIB_OBJ) $(GPU_LIB_OBJ)
else
PROGS     := $(CPU_PROGS)
TESTS     := $(BIN)/test_cpu
LIB_OBJ   := $(COMMON_OBJ) $(CPU_LIB_OBJ)
endif

.PHONY: all run test docs docs-check lib diff diffstat print-cpu-suites exercise bench clean help deps-check deps-docs deps-plot deps-fuzz deps-lint nvcc-notice fuzz lint
.DEFAULT_GOAL := all

all: nvcc-notice $(PROGS) $(TESTS) lib $(if $(HAVE_CUDA),$(BIN)/bench)

nvcc-notice:
	@$(if $(HAVE_CUDA),true,echo "notice: nvcc not found: skipping the CUDA steps ($(GPU_STEPS)) and the GPU suites")

help:
	@echo "make            build every step program (build/bin/NN_name), the suites and the library"
	@echo "make run        the tour: every step in order on one problem, each checked against the prior one"
	@echo "make test       the Check suites (CPU; GPU too where nvcc and a GPU exist), one total line"
	@echo "make docs       Doxygen HTML (code + notes, formulas by a local MathJax) in build/docs/html"
	@echo "make docs-check make docs, then check that the notes' formulas reached the HTML"
	@echo "make lib        build/lib/libattn.a (common/ + every step; header common/attn.h)"
	@echo "make diff FROM=02 TO=03     what one step adds over another (the ideas; TO=08 alone: its base;"
	@echo "                            FULL=1: every file; FROM=01/backward.c TO=07/backward_cpu.c: two files)"
	@echo "make diffstat   changed lines of every step against its base"
	@echo "make exercise EX=02         build exercises/02_*/ in place of the step and run its suite"
	@echo "make bench      sweep N, D, causal for every built step (GPU steps in one process, build/bin/bench:"
	@echo "                fp32, and the tensor-core steps in fp16/bf16) beside PyTorch SDPA (peers.py):"
	@echo "                table + CSV (+ plots) in build/bench/;"
	@echo "                step 07's trade-off table (test_gpu_07 --bench) in build/bench/step07.txt"
	@echo "make fuzz       libFuzzer on the .npy reader and the CLI, FUZZ_SECONDS (60) each, in build/fuzz/"
	@echo "make lint       cppcheck and clang-tidy (configuration: .clang-tidy, tests/lint/)"
	@echo "make clean      remove build/"
	@echo "variables: GPU_ARCHS='$(GPU_ARCHS)' CHECK_CFLAGS='$(CHECK_CFLAGS)' CHECK_LIBS='$(CHECK_LIBS)' CFLAGS='$(CFLAGS)'"
	@echo "           WERROR=$(WERROR) (0: warnings are not errors) FUZZ_SECONDS=$(FUZZ_SECONDS)"
	@echo "           MATHJAX_DIR=$(MATHJAX_DIR)"

# ---- compile -------------------------------------------------------------
$(OBJ)/common/%.o: common/%.c $(COMMON_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OBJ)/common/%.o: common/%.cu $(COMMON_H)
	@mkdir -p $(@D)
	$(NVCC) $(ALL_NVFLAGS) -c $< -o $@

CMD.c  = $(CC) $(ALL_CFLAGS)
CMD.cu = $(NVCC) $(ALL_NVFLAGS_NOARCH) $(foreach a,$($(1)_ARCHS),-gencode arch=compute_$(a),code=sm_$(a))
# step_rules S: objects of step S (each source once for the library and the
# suites; STEP_MAIN a second time with its main()), and its program
define step_rules
$(foreach f,$($(1)_SRCS),
$(call obj_of,$(1),$(f)): $(call src_dir,$(1))/$(f) $(addprefix $(call src_dir,$(1))/,$(call files_of,$(1))) $(COMMON_H)
	@mkdir -p $$(@D)
	$$(call CMD$(suffix $(f)),$(1)) -I$(call src_dir,$(1)) -c $$< -o $$@
)
$(OBJ)/steps/$(1)/main.o: $(call src_dir,$(1))/$($(1)_MAIN) $(addprefix $(call src_dir,$(1))/,$(call files_of,$(1))) $(COMMON_H)
	@mkdir -p $$(@D)
	$$(call CMD$(suffix $($(1)_MAIN)),$(1)) -I$(call src_dir,$(1)) -DATTN_STEP_MAIN -c $$< -o $$@
$(BIN)/$(1): $(OBJ)/steps/$(1)/main.o $(foreach f,$(filter-out $($(1)_MAIN),$($(1)_SRCS)),$(call obj_of,$(1),$(f))) \
             $(foreach l,$($(1)_LINKS),$(foreach f,$($(l)_SRCS),$(call obj_of,$(l),$(f)))) \
             $(COMMON_OBJ) $(if $(call is_gpu_step,$(1)),$(COMMON_GOBJ))
	@mkdir -p $$(@D)
	$(if $(call is_gpu_step,$(1)),$$(CXX) $$^ -o $$@ $$(CUDA_LINK) -lm,$$(CC) $$(LDFLAGS) $$^ -o $$@ -lm)
$(if $(call is_ex,$(1)),$(foreach f,$(call files_of,$(1)),
$(BUILD)/overlay/$(1)/$(f): $(or $(wildcard exercises/$(1)/$(f)),steps/$(1)/$(f))
	@mkdir -p $$(@D)
	cp $$< $$@
))
endef
$(foreach s,$(STEP_DIRS),$(eval $(call step_rules,$(s))))

$(OBJ)/tests/%.o: tests/%.c tests/conformance.h tests/gradcheck.h tests/suites.h $(wildcard tests/util.h) $(COMMON_H) | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c $< -o $@

# ---- link ----------------------------------------------------------------
$(BIN)/test_cpu: $(TEST_CPU_OBJ) $(CPU_LIB_OBJ) $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(CHECK_LIBS) -lm

# a GPU suite links every step (each compares a step with its base)
# test-only GPU code (tests/*.cu: a pass-through step), linked into every GPU suite
TEST_GPU_HELPERS := $(patsubst tests/%.cu,$(OBJ)/tests/%.o,$(wildcard tests/*.cu))
$(OBJ)/tests/%.o: tests/%.cu $(COMMON_H)
	@mkdir -p $(@D)
	$(NVCC) $(ALL_NVFLAGS) -c $< -o $@
$(foreach t,$(GPU_SUITES),$(BIN)/$(t)): $(BIN)/%: $(OBJ)/tests/%.o $(OBJ)/tests/conformance.o $(OBJ)/tests/gradcheck.o $(OBJ)/tests/tcsuite.o $(TEST_GPU_HELPERS) $(CPU_LIB_OBJ) $(GPU_LIB_OBJ) $(COMMON_OBJ) $(COMMON_GOBJ)
	@mkdir -p $(@D)
	$(CXX) $^ -o $@ $(CUDA_LINK) $(CHECK_LIBS) -lm

# The step registry: every GPU step's descriptor, from the step.mk files, so
# that the benchmark (and anything else that walks the steps) needs no line
# per step. Generated C; linked into build/bin/bench.
REGISTRY := $(BUILD)/gen/registry.c
$(REGISTRY): $(wildcard steps/*/step.mk) Makefile
	@mkdir -p $(@D)
	@{ echo '/* generated by the Makefile from every steps/NN_name/step.mk: do not edit */'; \
	   echo '#include "common.h"'; \
	   $(foreach s,$(GPU_STEPS),echo 'extern const attn_step $($(s)_DESC);';) \
	   echo 'const attn_step *const attn_gpu_steps[] = {'; \
	   $(foreach s,$(GPU_STEPS),echo '    &$($(s)_DESC)$(comma)';) \
	   echo '    NULL};'; } > $@.tmp && mv $@.tmp $@
$(OBJ)/gen/registry.o: $(REGISTRY) $(COMMON_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

include tests/bench/bench.mk

lib: $(LIB)/libattn.a
$(LIB)/libattn.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
	@echo "built $@ ($(words $^) objects; header: common/attn.h)"

# ---- run, test, docs, bench ----------------------------------------------
# test_cpu: a GPU step that cannot run here shows its CPU part instead
# (step 07's backward_cpu.c, step 08's fragment maps), run by its CPU suite
run: nvcc-notice $(PROGS) $(BIN)/test_cpu
	@BIN=$(BIN) sh tests/tour.sh $(STEP_DIRS)

test: nvcc-notice $(TESTS) $(if $(HAVE_CUDA),$(GPU_PROGS))
	@BIN=$(BIN) sh tests/run_suites.sh $(addprefix test_cpu:,$(CPU_SUITES)) \
	   $(if $(HAVE_CUDA),$(GPU_SUITES) tests/no_device.sh)

# ---- fuzzing: clang -fsanitize=fuzzer,address,undefined ------------------
FUZZ_FLAGS := -std=c11 -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer -Icommon
$(BUILD)/fuzz/fuzz_npy: tests/fuzz/fuzz_npy.c common/npy.c common/mem.c common/outputs.c common/error.c common/common.h common/attn.h | deps-fuzz
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(filter %.c,$^) -o $@ -lm
$(BUILD)/fuzz/fuzz_cli: tests/fuzz/fuzz_cli.c common/cli.c common/problem.c common/error.c common/common.h common/attn.h | deps-fuzz
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
	@MATHJAX_DIR=$(MATHJAX_DIR) sh tests/ensure-deps.sh mathjax
deps-plot:
	@sh tests/ensure-deps.sh gnuplot || true

# The book typesets its formulas with MathJax 2 from Debian's libjs-mathjax,
# copied into the HTML (Doxyfile: MATHJAX_RELPATH = mathjax): no CDN, and the
# folder can be moved. Doxyfile's OUTPUT_DIRECTORY is build/docs.
DOCS_HTML   := build/docs/html
docs: deps-docs
	@mkdir -p $(DOCS_HTML)
	doxygen Doxyfile
	@sh tests/docs/mathjax.sh $(MATHJAX_DIR) $(DOCS_HTML)
	@echo "docs: $(DOCS_HTML)/index.html"

# CI: every page's MathJax script is a file of the book; the pages of
# DOCS_MATH_PAGES carry formulas; on the notes and exercise pages MathJax
# can read every formula and no formula source is left (tests/docs/check.py)
DOCS_MATH_PAGES := notes_02,notes_03,notes_07
DOCS_PAGES      := 'notes_0*' notes_glossary exercises 'exercise_*'
docs-check: docs
	@python3 tests/docs/check.py $(DOCS_HTML) --need $(DOCS_MATH_PAGES) $(DOCS_PAGES)

# `make bench`: the GPU steps in one process (build/bin/bench: the fp32
# sweep and the tensor-core sweep in 16 bits, every shape, repeats
# interleaved), the PyTorch SDPA peers on the same shapes (tests/bench/
# peers.py; one `skipped:` line without PyTorch or a GPU), then the CPU step
# programs (tests/bench/sweep.py --merge adds their rows and prints the
# tables, the steps' ratios to the peers of the same run), then step 07's
# trade-off table. Without nvcc or a GPU the sweep runs every step program
# as before. On a GPU machine with a time limit: tests/bench/gpu_bench.sh.
bench: $(PROGS) $(if $(HAVE_CUDA),$(BIN)/bench) $(filter %test_gpu_07,$(TESTS)) deps-plot
	@mkdir -p $(BUILD)/bench && rm -f $(BUILD)/bench/results.csv $(BUILD)/bench/peers.csv
	$(if $(HAVE_CUDA),$(BIN)/bench --out $(BUILD)/bench)
	python3 tests/bench/peers.py --out $(BUILD)/bench
	python3 tests/bench/sweep.py --bin $(BIN) --out $(BUILD)/bench --merge
	@if [ -x $(BIN)/test_gpu_07 ]; then $(BIN)/test_gpu_07 --bench | tee $(BUILD)/bench/step07.txt; fi

# the CPU suites' names, for scripts (CI, tests/gpu_check.sh)
print-cpu-suites:
	@echo $(CPU_SUITES)

# `make diff FROM=05 TO=06`: the ideas (tests/stepdiff.sh says what that is)
diff:
	@sh tests/stepdiff.sh "$(FROM)" "$(TO)" "$(FULL)"

# the size of every lesson: changed lines of `make diff` per step and its base
diffstat:
	@printf '%-22s %-22s %6s %6s %6s\n' step base added removed total
	@for s in $(STEP_DIRS); do n=$${s%%_*}; b=$$(sed -n 's/^STEP_BASE[[:space:]]*:=[[:space:]]*//p' steps/$$s/step.mk); \
	   [ -n "$$b" ] || continue; \
	   sh tests/stepdiff.sh "$$b" "$$n" | awk -v s=$$s -v b=$$(ls -d steps/$${b}_* | xargs basename) \
	     '/^\+\+\+|^---/{next} /^\+/{a++} /^-/{r++} END{printf "%-22s %-22s %6d %6d %6d\n", s, b, a, r, a+r}'; done

# `make exercise EX=NN`: build with exercises/NN_*/'s files in place of the
# step's, then grade with the step's suite: the CPU one when the step has
# tests/test_NN.c (and then the program suite too, which runs the step
# programs on faults and NaN/Inf inputs), else the GPU suite step NN in
# test_gpu; without a GPU that is "NOT GRADED" and exit 1, never a pass.
EX_CPU := $(if $(wildcard tests/test_$(EX).c),1)
EX_BIN := $(BUILD)/exercise-$(EX)/bin/$(if $(EX_CPU),test_cpu,test_gpu)
exercise:
	@test -n "$(EX)" || { echo "usage: make exercise EX=02"; exit 2; }
	@ls -d exercises/$(EX)_* >/dev/null 2>&1 || { echo "no exercise $(EX) under exercises/"; exit 2; }
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/exercise-$(EX) EX=$(EX) $(EX_BIN)
	@echo "grading exercise $(EX) with suite step$(EX) ($(EX_BIN))"; \
	 out=$$(CK_RUN_SUITE=step$(EX) $(EX_BIN) 2>&1); rc=$$?; echo "$$out"; \
	 if echo "$$out" | grep -q '^skipped: no CUDA device'; then \
	   echo "NOT GRADED: no CUDA device (a GPU exercise is graded on a machine with one)"; exit 1; fi; \
	 if [ -n "$(EX_CPU)" ]; then \
	   echo "grading exercise $(EX) with suite program (the step programs on faults, NaN/Inf inputs)"; \
	   CK_RUN_SUITE=program $(EX_BIN) || rc=1; fi; \
	 exit $$rc

clean:
	rm -rf $(BUILD)
