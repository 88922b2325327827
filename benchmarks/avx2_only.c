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
 * not through the C library, would replace the handler; a thread that blocks SIGSEGV and then
 * executes CPUID is killed (the kernel delivers a blocked fault with its default action). The
 * benchmark's sides (Python, numpy, onnxruntime, PyTorch) do neither.
 *
 * Build: gcc -O2 -shared -fPIC -o libavx2only.so avx2_only.c
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

static long cpuid_allowed(int allowed) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, allowed); }

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
static sigaction_fn real_sigaction;
static signal_fn real_signal;
static volatile sig_atomic_t masking;   /* our handler is installed and CPUID faults */
static struct sigaction program_action; /* the SIGSEGV disposition the program asked for */

static sigaction_fn libc_sigaction(void) {
    if (real_sigaction == NULL)
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return real_sigaction;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != SIGSEGV || !masking)
        return libc_sigaction()(sig, act, old);
    struct sigaction wanted;
    if (act != NULL)
        wanted = *act; /* `act` and `old` may be the same struct */
    if (old != NULL)
        *old = program_action;
    if (act != NULL)
        program_action = wanted;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    if (sig != SIGSEGV || !masking) {
        if (real_signal == NULL)
            real_signal = (signal_fn)dlsym(RTLD_NEXT, "signal");
        return real_signal(sig, handler);
    }
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig); /* as glibc's signal() blocks it while its handler runs */
    if (sigaction(sig, &act, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

static void die_of(int sig) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    masking = 0;
    libc_sigaction()(sig, &dfl, NULL);
    raise(sig);
}

/* A SIGSEGV that is not ours: to the program's handler (with its mask and SA_RESETHAND), else
 * its default action. An ignored SIGSEGV from a fault kills, as the kernel does: returning
 * would run the faulting instruction again forever. */
static void pass_on(int sig, siginfo_t *info, void *context) {
    struct sigaction act = program_action;
    int sent = info != NULL && (info->si_code == SI_USER || info->si_code == SI_QUEUE ||
                                info->si_code == SI_TKILL);
    if (act.sa_handler == SIG_DFL || (act.sa_handler == SIG_IGN && !sent)) {
        die_of(sig);
        return;
    }
    if (act.sa_handler == SIG_IGN)
        return;
    if (act.sa_flags & SA_RESETHAND) {
        memset(&program_action, 0, sizeof program_action);
        program_action.sa_handler = SIG_DFL;
        sigemptyset(&program_action.sa_mask);
    }
    sigset_t block, saved;
    block = act.sa_mask;
    sigdelset(&block, SIGSEGV); /* ours stays deliverable: a CPUID in the handler must work */
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    if (act.sa_flags & SA_SIGINFO)
        act.sa_sigaction(sig, info, context);
    else
        act.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
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
    if (cpuid_allowed(1) != 0) { /* cannot ask the CPU: report nothing rather than fault again */
        a = b = c = d = 0;
    } else {
        __cpuid_count(leaf, sub, a, b, c, d);
        cpuid_allowed(0);
        hide(leaf, sub, &a, &b, &c, &d);
    }
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
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    program_action.sa_handler = SIG_DFL;
    sigemptyset(&program_action.sa_mask);
    if (libc_sigaction()(SIGSEGV, &sa, NULL) == 0 && cpuid_allowed(0) == 0)
        masking = 1;
}
