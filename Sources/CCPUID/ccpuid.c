#include "ccpuid.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

int smelt_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int regs[4]) {
    unsigned int highest = __get_cpuid_max(leaf & 0x80000000u, 0);
    if (highest == 0 || leaf > highest) { regs[0] = regs[1] = regs[2] = regs[3] = 0; return 0; }
    __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
    return 1;
}

unsigned long long smelt_xcr0(void) {
    unsigned int r[4];
    if (!smelt_cpuid(1, 0, r) || !(r[2] & (1u << 27))) return 0;
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#else
int smelt_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int regs[4]) {
    (void)leaf; (void)subleaf;
    regs[0] = regs[1] = regs[2] = regs[3] = 0;
    return 0;
}
unsigned long long smelt_xcr0(void) { return 0; }
#endif
