/*
 * Coroutine back end: ucontext builds the stack and performs the very
 * first switch into a new coroutine; every later switch is a plain
 * _setjmp/_longjmp pair, which (unlike swapcontext) does not save and
 * restore the signal mask and therefore costs no system call.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Fortified longjmp refuses to jump to another stack ("longjmp causes
 * uninitialized stack frame"), which is exactly what coroutines do.
 */
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE
#endif
#include "qemu/osdep.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "qemu/coroutine_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define CO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CO_ASAN 1
#endif
#endif

#ifdef CO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CO_VALGRIND 1
#endif
#endif

/*
 * 1 MiB per coroutine: qcow2 metadata code runs inside coroutines and
 * glib/libc calls can use a lot of stack.  Only touched pages become
 * resident, so the generous size is cheap.
 */
#define COROUTINE_STACK_SIZE (1 * MiB)

typedef struct CoroutineUContext {
    Coroutine base;
    void *map;              /* whole mapping, guard page included */
    size_t map_size;
    void *stack;            /* usable part, above the guard page */
    size_t stack_size;
    jmp_buf env;
#ifdef CO_ASAN
    void *fake_stack;
#endif
#ifdef CO_VALGRIND
    unsigned int valgrind_id;
#endif
    bool leader;
} CoroutineUContext;

/*
 * The leader stands for the thread's own stack: switching "to the
 * leader" returns to non-coroutine code.  current is NULL while the
 * leader runs.
 */
static __thread CO_TLS_MODEL CoroutineUContext co_leader = { .leader = true };
static __thread CO_TLS_MODEL Coroutine *co_current;
/* Hand-off from qemu_coroutine_new() to the trampoline's first run. */
static __thread CO_TLS_MODEL CoroutineUContext *co_init_self;
static __thread CO_TLS_MODEL jmp_buf *co_init_return;

/*
 * A coroutine may be resumed on another thread than the one it yielded
 * on.  The compiler is free to cache the address of a thread-local
 * variable across a function call, so every TLS access goes through a
 * function it can neither inline nor treat as pure.
 */
#ifdef __clang__
#define CO_TLS_FN static __attribute__((noinline))
#else
#define CO_TLS_FN static __attribute__((noinline, noclone))
#endif

CO_TLS_FN Coroutine *get_co_current(void)
{
    __asm__ volatile("" ::: "memory");
    return co_current;
}

CO_TLS_FN void set_co_current(Coroutine *co)
{
    __asm__ volatile("" ::: "memory");
    co_current = co;
}

CO_TLS_FN CoroutineUContext *get_co_leader(void)
{
    __asm__ volatile("" ::: "memory");
    return &co_leader;
}

CO_TLS_FN CoroutineUContext *get_co_init_self(void)
{
    __asm__ volatile("" ::: "memory");
    return co_init_self;
}

CO_TLS_FN jmp_buf *get_co_init_return(void)
{
    __asm__ volatile("" ::: "memory");
    return co_init_return;
}

CO_TLS_FN void set_co_init(CoroutineUContext *self, jmp_buf *ret)
{
    __asm__ volatile("" ::: "memory");
    co_init_self = self;
    co_init_return = ret;
}

#ifdef CO_ASAN
/* Which fiber started the switch, so the target can learn its stack. */
static __thread CO_TLS_MODEL CoroutineUContext *co_asan_from;

CO_TLS_FN void set_asan_from(CoroutineUContext *from)
{
    __asm__ volatile("" ::: "memory");
    co_asan_from = from;
}

CO_TLS_FN CoroutineUContext *get_asan_from(void)
{
    __asm__ volatile("" ::: "memory");
    return co_asan_from;
}
#endif

/*
 * ASan must be told about every stack switch or it reports bogus
 * stack-buffer-overflows.  @fake_stack_save NULL means the fiber we
 * leave is finished, so ASan may drop its fake stack.
 */
static inline void co_asan_start(CoroutineUContext *from, void **fake_save,
                                 CoroutineUContext *to)
{
#ifdef CO_ASAN
    set_asan_from(from);
    __sanitizer_start_switch_fiber(fake_save, to->stack, to->stack_size);
#endif
}

static inline void co_asan_finish(void *fake_save)
{
#ifdef CO_ASAN
    const void *bottom_old;
    size_t size_old;
    CoroutineUContext *from;

    __sanitizer_finish_switch_fiber(fake_save, &bottom_old, &size_old);
    /* The thread's own stack is only learned when we leave it. */
    from = get_asan_from();
    if (from && from->leader && !from->stack) {
        from->stack = (void *)bottom_old;
        from->stack_size = size_old;
    }
#endif
}

Coroutine *qemu_coroutine_current(void)
{
    Coroutine *co = get_co_current();

    return co ? co : &get_co_leader()->base;
}

bool qemu_coroutine_is_leader(Coroutine *co)
{
    return container_of(co, CoroutineUContext, base)->leader;
}

static void QEMU_NORETURN coroutine_trampoline(void)
{
    CoroutineUContext *self = get_co_init_self();
    Coroutine *co = &self->base;
#ifdef CO_ASAN
    void *fake_save = NULL;
#endif

#ifdef CO_ASAN
    co_asan_finish(NULL);
#endif
    /* Park here; qemu_coroutine_new() gets control back right away. */
    if (!_setjmp(self->env)) {
#ifdef CO_ASAN
        co_asan_start(self, &fake_save, get_asan_from());
#endif
        _longjmp(*get_co_init_return(), 1);
    }

    /* First real entry, from qemu_coroutine_switch(). */
#ifdef CO_ASAN
    co_asan_finish(fake_save);
#endif
    for (;;) {
        co->entry(co->entry_arg);
        /*
         * Returns when the coroutine is taken from the pool and entered
         * again, with a new entry point.
         */
        qemu_coroutine_switch(co, co->caller, COROUTINE_TERMINATE);
    }
}

Coroutine *qemu_coroutine_new(void)
{
    CoroutineUContext *co = g_new0(CoroutineUContext, 1);
    size_t page = qemu_real_host_page_size();
    ucontext_t uc;
    jmp_buf old_env;
#ifdef CO_ASAN
    void *fake_save = NULL;
#endif

    co->stack_size = COROUTINE_STACK_SIZE;
    co->map_size = co->stack_size + page;
    co->map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
    if (co->map == MAP_FAILED) {
        fprintf(stderr, "coroutine: cannot allocate a %zu byte stack: %s\n",
                co->map_size, strerror(errno));
        abort();
    }
    /* Stacks grow down: an overflow hits this page and faults. */
    if (mprotect(co->map, page, PROT_NONE) < 0) {
        fprintf(stderr, "coroutine: cannot protect the stack guard page: "
                "%s\n", strerror(errno));
        abort();
    }
    co->stack = (char *)co->map + page;
#ifdef CO_VALGRIND
    co->valgrind_id = VALGRIND_STACK_REGISTER(co->stack,
                                              (char *)co->stack +
                                              co->stack_size);
#endif

    if (getcontext(&uc) < 0) {
        fprintf(stderr, "coroutine: getcontext: %s\n", strerror(errno));
        abort();
    }
    uc.uc_link = NULL;          /* the trampoline never returns */
    uc.uc_stack.ss_sp = co->stack;
    uc.uc_stack.ss_size = co->stack_size;
    uc.uc_stack.ss_flags = 0;
    makecontext(&uc, coroutine_trampoline, 0);

#ifdef CO_ASAN
    /*
     * A recycled address range may carry stale poisoning from an old
     * stack's frames (swapcontext's interceptor would clear it, but it
     * also warns about false positives we avoid with the annotations).
     */
    ASAN_UNPOISON_MEMORY_REGION(co->stack, co->stack_size);
#endif

    /*
     * One setcontext to get onto the new stack; the trampoline saves a
     * jmp_buf there and longjmps straight back to old_env.
     */
    set_co_init(co, &old_env);
    if (!_setjmp(old_env)) {
#ifdef CO_ASAN
        co_asan_start(container_of(qemu_coroutine_current(),
                                   CoroutineUContext, base),
                      &fake_save, co);
#endif
        setcontext(&uc);
        abort();    /* only returns on error */
    }
#ifdef CO_ASAN
    co_asan_finish(fake_save);
#endif
    set_co_init(NULL, NULL);
    return &co->base;
}

void qemu_coroutine_delete(Coroutine *base)
{
    CoroutineUContext *co = container_of(base, CoroutineUContext, base);

#ifdef CO_VALGRIND
    VALGRIND_STACK_DEREGISTER(co->valgrind_id);
#endif
    munmap(co->map, co->map_size);
    g_free(co);
}

CoroutineAction qemu_coroutine_switch(Coroutine *from_, Coroutine *to_,
                                      CoroutineAction action)
{
    CoroutineUContext *from = container_of(from_, CoroutineUContext, base);
    CoroutineUContext *to = container_of(to_, CoroutineUContext, base);
    int ret;
#ifdef CO_ASAN
    void *fake_save = NULL;
#endif

    set_co_current(to->leader ? NULL : to_);
    ret = _setjmp(from->env);
    if (ret == 0) {
#ifdef CO_ASAN
        co_asan_start(from, action == COROUTINE_TERMINATE ? NULL : &fake_save,
                      to);
#endif
        _longjmp(to->env, action);
    }
#ifdef CO_ASAN
    co_asan_finish(fake_save);
#endif
    return ret;
}
