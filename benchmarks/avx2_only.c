/* avx2_only.c: run a process as if its CPU had AVX2 but no AVX-512, AVX-VNNI or AMX.
 *
 * Used by `benchmarks/bench.py --isa avx2` (LD_PRELOAD) to time the AVX2 kernels of every
 * side, the reference's PyTorch and our onnxruntime alike, on an AVX-512 machine: onnxruntime
 * (MLAS), PyTorch (ATen, oneDNN) and numpy choose their kernels once from CPUID, and none has
 * a switch that restricts all of them. Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID,
 * /proc/cpuinfo flag `cpuid_fault`) makes every CPUID instruction of this process raise
 * SIGSEGV; the handler below executes the real CPUID, clears the feature bits of the larger
 * instruction sets and steps over the instruction. The setting is per thread, inherited by new
 * threads, and reset by execve, where LD_PRELOAD (inherited through the environment) sets it
 * again in the new program.
 *
 * A program's own SIGSEGV handlers (PyTorch's DataLoader workers install one, Python's
 * faulthandler another) are kept aside: sigaction() and signal() for SIGSEGV are answered
 * here, and every SIGSEGV that is not a CPUID fault goes to the handler the program set, or
 * ends the process as it would have.
 *
 * Limits: code that ran before this library's constructor (the dynamic loader's own choice of
 * memcpy variants) keeps what it saw; a program that calls the sigaction system call directly,
 * not through the C library, would replace the handler.
 *
 * Build: gcc -O2 -shared -fPIC -o libavx2only.so avx2_only.c
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

static long cpuid_allowed(int allowed) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, allowed); }

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static int masking;                /* our handler is installed and CPUID faults */
static struct sigaction program_action; /* the SIGSEGV disposition the program asked for */

static sigaction_fn libc_sigaction(void) {
    if (real_sigaction == NULL)
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return real_sigaction;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGSEGV || !masking)
        return libc_sigaction()(sig, act, old);
    if (old != NULL)
        *old = program_action;
    if (act != NULL)
        program_action = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    if (sigaction(sig, &act, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

/* A SIGSEGV that is not ours: to the program's handler, else its default action. */
static void pass_on(int sig, siginfo_t *info, void *context) {
    struct sigaction act = program_action;
    if (act.sa_flags & SA_SIGINFO) {
        act.sa_sigaction(sig, info, context);
    } else if (act.sa_handler == SIG_IGN) {
        return;
    } else if (act.sa_handler != SIG_DFL) {
        act.sa_handler(sig);
    } else {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        masking = 0;
        libc_sigaction()(sig, &dfl, NULL);
        raise(sig);
    }
}

static void hide(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c,
                 unsigned *d) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL */
        *b &= ~(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31));
        /* ECX: AVX512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
        *c &= ~(BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14));
        /* EDX: AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
        *d &= ~(BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA; EDX: AVX10 */
        *a &= ~(BIT(4) | BIT(5) | BIT(21) | BIT(23));
        *d &= ~BIT(19);
    } else if (leaf == 0xd && sub == 0) {
        /* XSAVE state components: opmask, ZMM_Hi256, Hi16_ZMM, AMX TILECFG, TILEDATA */
        *a &= ~(BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18));
    }
}

static void on_fault(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *reg = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)reg[REG_RIP];
    unsigned a, b, c, d;
    /* A faulting CPUID is a general protection fault (si_code SI_KERNEL) at a CPUID opcode. */
    if (info == NULL || info->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        pass_on(sig, info, context);
        return;
    }
    unsigned leaf = (unsigned)reg[REG_RAX], sub = (unsigned)reg[REG_RCX];
    cpuid_allowed(1);
    __cpuid_count(leaf, sub, a, b, c, d);
    cpuid_allowed(0);
    hide(leaf, sub, &a, &b, &c, &d);
    reg[REG_RAX] = a;
    reg[REG_RBX] = b;
    reg[REG_RCX] = c;
    reg[REG_RDX] = d;
    reg[REG_RIP] += 2;
}

__attribute__((constructor)) static void start_masking(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    program_action.sa_handler = SIG_DFL;
    sigemptyset(&program_action.sa_mask);
    if (libc_sigaction()(SIGSEGV, &sa, NULL) == 0 && cpuid_allowed(0) == 0)
        masking = 1;
}
