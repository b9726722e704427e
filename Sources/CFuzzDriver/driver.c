#include "CFuzzDriver.h"
#include <stddef.h>
#include <stdint.h>

extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *, size_t))
    __attribute__((weak));
extern int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int swiftnfs_run_fuzzer(int argc, char **argv) {
    if (LLVMFuzzerRunDriver == NULL) return -1;
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
