#include <cblas.h>
#include <stddef.h>

/* LAPACK routines OpenBLAS exports with the Fortran calling convention (no lapacke.h is needed):
   every argument by pointer, column-major matrices, and the hidden length of each character
   argument last (gfortran's ABI; ignored by f2c-built LAPACK). Used by Kernels.LAPACK. */
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_len);
void strtri_(const char *uplo, const char *diag, const int *n, float *a, const int *lda, int *info,
             size_t uplo_len, size_t diag_len);
