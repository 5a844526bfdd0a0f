/*
 * cortex_m.h - the few Cortex-M core registers the firmware touches (no CMSIS needed).
 * Addresses are architectural (ARMv6-M / ARMv7-M / ARMv8-M System Control Space).
 */
#ifndef LENET_EDGE_CORTEX_M_H
#define LENET_EDGE_CORTEX_M_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System Control Block */
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_SHCSR REG32(0xE000ED24u)
#define SCB_CFSR REG32(0xE000ED28u) /* ARMv7-M and later only */
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR REG32(0xE000ED38u)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_AIRCR_RESET (0x05FA0000u | (1u << 2)) /* VECTKEY | SYSRESETREQ */

/* SysTick (24-bit down counter) */
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)

/* NVIC */
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * ((uint32_t)(n) / 32u))
#define NVIC_ENABLE(n) (NVIC_ISER(n) = 1u << ((uint32_t)(n) % 32u))

/* Debug: DWT cycle counter (ARMv7-M and later; not emulated by QEMU 7.2) */
#define DEMCR REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR REG32(0xE0001FB0u) /* Cortex-M7: software lock */
#define DWT_CTRL_CYCCNTENA (1u << 0)

static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

static inline void barrier_dsb_isb(void)
{
    __asm volatile("dsb\n\tisb" ::: "memory");
}

#endif /* LENET_EDGE_CORTEX_M_H */
