#ifndef SMELT_CCPUID_H
#define SMELT_CCPUID_H

/* The processor's own description of itself, for Kernels.CPUFeatures: the cpuid instruction and
   the extended control register XCR0 (which register states the operating system saves, and so
   which vector units a program may use). On processors other than x86-64 both report nothing. */

/* Fills regs with EAX, EBX, ECX, EDX of cpuid(leaf, subleaf); returns 0 when the leaf is beyond
   the processor's highest leaf of its range (or on other processors), 1 otherwise. */
int smelt_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int regs[4]);

/* XCR0 when the OS has enabled XSAVE (cpuid.1:ECX.OSXSAVE), else 0. */
unsigned long long smelt_xcr0(void);

#endif
