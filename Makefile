# Convenience wrapper around meson/ninja.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later

BUILD ?= build

.PHONY: all check check-unit check-iotests check-qemu-compat check-vm demo bench clean distclean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# CI builds with -Werror; so does anyone who sets WERROR=1.
$(BUILD)/build.ninja:
	./configure --builddir=$(BUILD) $(if $(or $(CI),$(WERROR)),--enable-werror) $(CONFIGURE_FLAGS)

# MESON_TEST_ARGS: extra arguments, e.g. "--no-suite vm".
check: all
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 $(MESON_TEST_ARGS)

check-unit: all
	meson test -C $(BUILD) --print-errorlogs --suite unit

check-iotests: all
	meson test -C $(BUILD) --print-errorlogs --suite iotests

check-qemu-compat: all
	meson test -C $(BUILD) --print-errorlogs --suite iotests-qemu

check-vm: all
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 --suite vm

demo: all
	scripts/demo.sh $(BUILD)

bench: all
	scripts/bench/run.sh $(BUILD)

clean:
	-ninja -C $(BUILD) clean

distclean:
	rm -rf $(BUILD)
