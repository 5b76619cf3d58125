# CMake toolchain file: bare-metal RV32IMAC (ILP32), the ESP32-C3's ISA, with
# Debian's gcc-riscv64-unknown-elf + picolibc-riscv64-unknown-elf. Programs
# use picolibc's semihosting crt0 and OS layer, so they run under
# `qemu-system-riscv32 -M virt -bios none -kernel X.elf
#  -semihosting-config enable=on,target=native` and return main()'s status as
# qemu's exit status (without the semihost crt0 qemu never exits).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv32)

set(RV32_PREFIX riscv64-unknown-elf- CACHE STRING "cross tool prefix")
set(CMAKE_C_COMPILER ${RV32_PREFIX}gcc)
set(CMAKE_AR ${RV32_PREFIX}ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${RV32_PREFIX}ranlib CACHE FILEPATH "")
set(CMAKE_SIZE ${RV32_PREFIX}size CACHE FILEPATH "")
# try_compile cannot run or link a bare-metal program without our link flags
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(RV32_ARCH_FLAGS "--specs=picolibc.specs -march=rv32imac -mabi=ilp32")
# RV32_EXTRA_C_FLAGS (e.g. "-fstack-usage -fcallgraph-info=su"): added to every
# compilation without replacing these flags (as -DCMAKE_C_FLAGS would).
set(RV32_EXTRA_C_FLAGS "" CACHE STRING "extra C flags for every rv32 compilation")
set(CMAKE_C_FLAGS_INIT "${RV32_ARCH_FLAGS} -ffunction-sections -fdata-sections ${RV32_EXTRA_C_FLAGS}")
# qemu's virt machine: RAM at 0x80000000 (128 MiB by default). picolibc's
# linker script takes its memory map from these symbols: code and read-only
# data in the first 8 MiB, data/bss/heap/stack after it, a 256 KiB stack.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "--oslib=semihost --crt0=semihost -Wl,--gc-sections \
-Wl,--defsym=__flash=0x80000000 -Wl,--defsym=__flash_size=0x00800000 \
-Wl,--defsym=__ram=0x80800000 -Wl,--defsym=__ram_size=0x01000000 \
-Wl,--defsym=__stack_size=0x00040000")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
