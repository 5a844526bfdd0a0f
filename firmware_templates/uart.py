"""Baud-rate divisors of the UART families the firmware drives: the Python twin of
`common/uart_divisor.h` (the tests check they agree), used to refuse, at build time, a
baud rate a board's UART cannot make.

Each function is the reference manual's definition:
- STM32 USART, 16x oversampling: baud = f_ck / USARTDIV, BRR = 16 * USARTDIV (12.4 fixed
  point) = round(f_ck / baud), 16 <= BRR <= 0xFFFF (RM0390 section 25.4.4, RM0008, RM0444).
- Arm CMSDK APB UART: baud = PCLK / BAUDDIV, BAUDDIV >= 16 (CMSDK TRM, UART).
- nRF51 UART: BAUDRATE = baud * 2^32 / 16 MHz in 0x1000 steps (nRF51 RM, UART BAUDRATE).
"""

from __future__ import annotations

from dataclasses import dataclass

from lenet_edge.errors import LenetEdgeError

MAX_BAUD_ERROR = 0.02  # both ends' errors add up; 8N1 framing tolerates about 4-5 %


def _round_div(a: int, b: int) -> int:
    return (a + b // 2) // b


@dataclass(frozen=True)
class UartSetting:
    divisor: int  # the register value
    baud: int  # the rate it gives

    def error(self, requested: int) -> float:
        return self.baud / requested - 1.0


def stm32_usart(clock_hz: int, baud: int) -> UartSetting:
    brr = min(max(_round_div(clock_hz, baud), 16), 0xFFFF)
    return UartSetting(brr, _round_div(clock_hz, brr))


def cmsdk(clock_hz: int, baud: int) -> UartSetting:
    div = min(max(_round_div(clock_hz, baud), 16), 0xFFFFF)
    return UartSetting(div, _round_div(clock_hz, div))


def nrf51(clock_hz: int, baud: int) -> UartSetting:
    del clock_hz  # the nRF51 UART always runs from the 16 MHz clock
    value = ((baud << 32) // 16_000_000 + 0x800) & ~0xFFF
    return UartSetting(value, (value * 16_000_000 + (1 << 31)) >> 32)


FAMILIES = {"stm32_usart": stm32_usart, "cmsdk": cmsdk, "nrf51": nrf51}


def uart_setting(family: str, clock_hz: int, baud: int) -> UartSetting:
    try:
        return FAMILIES[family](clock_hz, baud)
    except KeyError:
        raise LenetEdgeError(f"unknown UART family '{family}'; known: {', '.join(FAMILIES)}") from None


def check_baud(board, baud: int) -> UartSetting:
    """The setting for `baud` on `board`'s console UART at its designed clock; a clear
    error when that UART cannot make it within MAX_BAUD_ERROR."""
    if not isinstance(baud, int) or baud <= 0:
        raise LenetEdgeError(f"--baud must be a positive whole number (got {baud!r})")
    uart = board.uart
    setting = uart_setting(uart["family"], uart["clock_hz"], baud)
    if abs(setting.error(baud)) > MAX_BAUD_ERROR:
        raise LenetEdgeError(
            f"{board.name}'s console UART cannot run at {baud} baud: from its "
            f"{uart['clock_hz'] / 1e6:g} MHz clock the nearest rate is {setting.baud} baud "
            f"({100 * setting.error(baud):+.1f} %, more than {100 * MAX_BAUD_ERROR:.0f} %)")
    return setting
