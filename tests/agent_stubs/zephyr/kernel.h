/* Stand-in for <zephyr/kernel.h>: only what the README's Zephyr example uses (tests). */
#ifndef AGENT_STUB_ZEPHYR_KERNEL_H
#define AGENT_STUB_ZEPHYR_KERNEL_H

#include <stddef.h> /* NULL, as the real kernel.h provides */
#include <stdint.h>

typedef struct {
    int64_t ticks;
} k_timeout_t;
#define K_MSEC(ms) ((k_timeout_t){(int64_t)(ms)})

struct k_sem {
    unsigned int count, limit;
};
#define K_SEM_DEFINE(name, initial, max) struct k_sem name = {(initial), (max)}
void k_sem_give(struct k_sem *sem);
int k_sem_take(struct k_sem *sem, k_timeout_t timeout);

int64_t k_uptime_get(void);
uint32_t k_cycle_get_32(void);
int sys_clock_hw_cycles_per_sec(void);

typedef void (*k_thread_entry_t)(void *p1, void *p2, void *p3);
#define K_THREAD_DEFINE(name, stack_size, entry, p1, p2, p3, prio, options, delay) \
    const k_thread_entry_t name##_entry = (entry)

#endif
