// Starts libFuzzer's driver on LLVMFuzzerTestOneInput when the program is built with
// -sanitize=fuzzer; returns -1 otherwise (libFuzzer is then absent: the symbol is weak).
#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H
int swiftnfs_run_fuzzer(int argc, char **argv);
#endif
