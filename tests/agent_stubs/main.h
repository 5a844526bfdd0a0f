/* Stand-in for an STM32CubeMX project's main.h: declares only the HAL and CMSIS names the
 * README's STM32 HAL example uses, with the HAL's types, so the example compiles in tests
 * (tests/test_agent.py). Not a HAL: nothing here is implemented. */
#ifndef AGENT_STUB_MAIN_H
#define AGENT_STUB_MAIN_H

#include <stdint.h>

typedef enum { HAL_OK = 0, HAL_ERROR = 1, HAL_BUSY = 2, HAL_TIMEOUT = 3 } HAL_StatusTypeDef;
typedef struct {
    void *Instance;
} UART_HandleTypeDef;

#define HAL_MAX_DELAY 0xFFFFFFFFu

HAL_StatusTypeDef HAL_UART_Transmit(UART_HandleTypeDef *huart, uint8_t *pData, uint16_t Size, uint32_t Timeout);
HAL_StatusTypeDef HAL_UART_Receive_IT(UART_HandleTypeDef *huart, uint8_t *pData, uint16_t Size);
void HAL_UART_RxCpltCallback(UART_HandleTypeDef *huart);
void HAL_UART_ErrorCallback(UART_HandleTypeDef *huart);
uint32_t HAL_GetTick(void);
uint32_t HAL_RCC_GetHCLKFreq(void);

/* CMSIS core_cm4.h */
typedef struct {
    volatile uint32_t CTRL;
    volatile uint32_t CYCCNT;
} DWT_Type;
typedef struct {
    volatile uint32_t DHCSR, DCRSR, DCRDR, DEMCR;
} CoreDebug_Type;
#define DWT ((DWT_Type *)0xE0001000UL)
#define CoreDebug ((CoreDebug_Type *)0xE000EDF0UL)
#define DWT_CTRL_CYCCNTENA_Msk (1UL)
#define CoreDebug_DEMCR_TRCENA_Msk (1UL << 24)
void NVIC_SystemReset(void);

#endif
