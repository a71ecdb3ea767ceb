"""Recorded accounts the exchange liquidates on their ratio, on loopback: Bybit's unified
trading account in cross margin (:class:`FakeBybitUnified`) and Binance portfolio margin
(:class:`FakeBinancePortfolio`), built on the servers of :mod:`.recorded_exchange`.

Bybit (bybit-exchange.github.io/docs/v5): ``GET /v5/account/info`` answers the account's
``marginMode`` (``REGULAR_MARGIN`` cross, ``PORTFOLIO_MARGIN``, ``ISOLATED_MARGIN``) and
``GET /v5/account/wallet-balance`` the UNIFIED account's ``totalEquity``,
``totalMarginBalance``, ``totalMaintenanceMargin``, ``totalInitialMargin``, ``accountMMRate``
and ``accountIMRate`` (rates rounded to 4 decimals, as in ccxt's quoted answer in
``bybit.ts`` ``parseBalance``: maintenance 0.38106773 on 18,070.33 shows ``"0"``); every other
endpoint is :class:`~.recorded_exchange.FakeBybit`'s.

Binance (developers.binance.com, Portfolio Margin): ``GET /papi/v1/account`` answers
``uniMMR``, ``accountEquity``, ``accountMaintMargin`` (its documented example by default:
uniMMR 5167.92171923 = 122,607.35137903 ÷ 23.72469206); the account's UM futures under
``/papi/v1/um/...`` answer as the USDⓈ-M endpoints of the same name do
(:class:`~.recorded_exchange.FakeBinanceFutures`: ``positionRisk``, ``income``,
``userTrades``, ``forceOrders``, ``leverageBracket``), with ccxt's ``portfolioMargin``
option; public market data stays under ``/fapi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .recorded_exchange import (
    API_KEY,
    Account,
    BybitAccount,
    FakeBinanceFutures,
    FakeBybit,
    _bybit_ok,
    _now,
    bracket,
    bybit_instrument,
    bybit_position,
    bybit_risk_limits,
    bybit_ticker,
    market,
    position,
)


@dataclass
class UnifiedBybitAccount(BybitAccount):
    """A Bybit unified account with its account-level figures (strings, as Bybit sends)."""

    margin_mode: str = "REGULAR_MARGIN"
    totals: dict[str, str] = field(default_factory=dict)  # wallet-balance account fields


def _rate(x: float) -> str:
    """A Bybit account rate: 4 decimals (ccxt's quoted answer: 0.0000211 shows "0")."""
    return f"{round(x, 4):g}"


class FakeBybitUnified(FakeBybit):
    """:class:`FakeBybit` whose account info and wallet balance are a unified account's."""

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        acc: UnifiedBybitAccount = self.account
        signed = req.headers.get("X-BAPI-API-KEY") == API_KEY and req.headers.get("X-BAPI-SIGN")
        if signed and fault is None and path == "/v5/account/info":
            return 200, _bybit_ok({"unifiedMarginStatus": 5, "marginMode": acc.margin_mode,
                                   "isMasterTrader": False, "spotHedgingStatus": "OFF",
                                   "updatedTime": str(_now()), "dcpStatus": "OFF",
                                   "timeWindow": 0, "smpGroup": 0}), {}
        if signed and fault is None and path == "/v5/account/wallet-balance":
            t = acc.totals
            coin = {"coin": "USDT", "equity": t["usdtEquity"], "usdValue": t["usdtEquity"],
                    "walletBalance": acc.wallet_balance, "free": "", "locked": "0",
                    "spotHedgingQty": "0", "borrowAmount": "0",
                    "availableToWithdraw": t["totalAvailableBalance"], "accruedInterest": "0",
                    "totalOrderIM": "0", "totalPositionIM": t["totalInitialMargin"],
                    "totalPositionMM": t["totalMaintenanceMargin"],
                    "unrealisedPnl": t["totalPerpUPL"], "cumRealisedPnl": "0", "bonus": "0",
                    "marginCollateral": True, "collateralSwitch": True,
                    "availableToBorrow": ""}
            return 200, _bybit_ok({"list": [{
                "accountType": "UNIFIED", "accountLTV": "0", "coin": [coin],
                **{k: v for k, v in t.items() if k != "usdtEquity"}}]}), {}
        return super()._answer(req, path, params, fault)


# ---------------------------------------------------------------------------- the accounts
BYBIT_WALLET = 5_000.0
# (symbol, positionIdx, side, size, avgPrice, markPrice): a one-way cross BTC long and both
# legs of an ETH hedge, all cross (tradeMode 0), no liquidation price per position ("")
BYBIT_POSITIONS = (
    ("BTCUSDT", 0, "Buy", "0.5", "60000.00", "58000.00"),
    ("ETHUSDT", 1, "Buy", "4", "3000.00", "3100.00"),
    ("ETHUSDT", 2, "Sell", "2", "3200.00", "3100.00"),
)
BYBIT_MMR = 0.005  # tier 1 of the risk limits the fake serves (bybit_risk_limits)


def bybit_unified_totals(margin_mode: str = "REGULAR_MARGIN") -> dict[str, str]:
    """The account fields of the recorded unified account by Bybit's published definitions
    (help centre, "Glossary (Unified Trading Account)"): margin balance (cross) = wallet
    balance + perp UPL; total maintenance margin = Σ maintenance margin of open positions
    (no orders, no borrowing) = Σ position value × MMR; account MM rate = total maintenance
    margin ÷ margin balance; initial margin at 20x.

    UPL: 0.5 × (58,000 − 60,000) + 4 × (3,100 − 3,000) − 2 × (3,100 − 3,200) = −400, so
    margin balance 4,600; maintenance 0.005 × (29,000 + 12,400 + 6,200) = 238; account MM
    rate 238 ÷ 4,600 = 5.17 % ("0.0517"); initial margin 47,600 ÷ 20 = 2,380."""
    upl = sum((1 if side == "Buy" else -1) * float(size) * (float(mark) - float(avg))
              for _, _, side, size, avg, mark in BYBIT_POSITIONS)
    value = sum(float(size) * float(mark) for *_, size, _avg, mark in BYBIT_POSITIONS)
    balance = BYBIT_WALLET + upl
    mm, im = value * BYBIT_MMR, value / 20
    return {"totalEquity": f"{balance:.8f}", "totalWalletBalance": f"{BYBIT_WALLET:.8f}",
            "totalMarginBalance": f"{balance:.8f}", "totalAvailableBalance": f"{balance - im:.8f}",
            "totalPerpUPL": f"{upl:.8f}", "totalInitialMargin": f"{im:.8f}",
            "totalMaintenanceMargin": f"{mm:.8f}", "accountIMRate": _rate(im / balance),
            "accountMMRate": _rate(mm / balance), "usdtEquity": f"{balance:.8f}"}


def sample_bybit_unified(margin_mode: str = "REGULAR_MARGIN") -> UnifiedBybitAccount:
    """A unified account (``margin_mode``) holding :data:`BYBIT_POSITIONS` at 20x, wallet
    5,000 USDT; no history beyond the open positions."""
    symbols = sorted({s for s, *_ in BYBIT_POSITIONS})
    acc = UnifiedBybitAccount(
        instruments=[bybit_instrument(s, s[:-4]) for s in symbols],
        risk_limits=[r for s in symbols for r in bybit_risk_limits("linear", s)],
        tickers=[bybit_ticker("linear", s, next(m for x, *_, m in BYBIT_POSITIONS if x == s))
                 for s in symbols],
        wallet_balance=f"{BYBIT_WALLET:.8f}", margin_mode=margin_mode,
        totals=bybit_unified_totals(margin_mode))
    t0 = _now() - 86_400_000
    for s, idx, side, size, avg, mark in BYBIT_POSITIONS:
        row = bybit_position("linear", s, idx, side, size, avg, mark, "",
                             f"{float(size) * float(avg) / 20:.2f}", "20", False, t0)
        upl = (1 if side == "Buy" else -1) * float(size) * (float(mark) - float(avg))
        row.update(positionValue=f"{float(size) * float(avg):.2f}",
                   unrealisedPnl=f"{upl:.8f}",
                   positionMM=f"{float(size) * float(mark) * BYBIT_MMR:.8f}")
        acc.positions.append(row)
    return acc


# Binance's documented /papi/v1/account example (Portfolio Margin, "Account Information")
PAPI_ACCOUNT_EXAMPLE = {
    "uniMMR": "5167.92171923", "accountEquity": "122607.35137903",
    "actualEquity": "73.47428058", "accountInitialMargin": "23.72469206",
    "accountMaintMargin": "23.72469206", "accountStatus": "NORMAL",
    "virtualMaxWithdrawAmount": "1627523.32459208", "totalAvailableBalance": "",
    "totalMarginOpenLoss": "", "updateTime": 1657707212154,
}


@dataclass
class PortfolioAccount(Account):
    """A Binance portfolio-margin account: the USDⓈ-M recorded account plus /papi/v1/account."""

    papi_account: dict[str, Any] = field(default_factory=lambda: dict(PAPI_ACCOUNT_EXAMPLE))


_PAPI_UM = {"/positionRisk": "/v2/positionRisk", "/income": "/v1/income",
            "/userTrades": "/v1/userTrades", "/forceOrders": "/v1/forceOrders",
            "/leverageBracket": "/v1/leverageBracket"}


class FakeBinancePortfolio(FakeBinanceFutures):
    """:class:`FakeBinanceFutures` that also answers a portfolio-margin account's /papi."""

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        acc: PortfolioAccount = self.account
        signed = req.headers.get("X-MBX-APIKEY") == API_KEY and "signature" in params
        if path.startswith("/papi/"):
            if not signed:
                return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for "
                                                   "action."}, {}
            if path == "/papi/v1/account":
                return 200, {**acc.papi_account, "updateTime": _now()}, {}
            if path == "/papi/v1/balance":  # Binance's documented "Account Balance" row
                w = acc.wallet_balance
                return 200, [{"asset": "USDT", "totalWalletBalance": w,
                              "crossMarginAsset": "0", "crossMarginBorrowed": "0",
                              "crossMarginFree": "0", "crossMarginInterest": "0",
                              "crossMarginLocked": "0", "umWalletBalance": w,
                              "umUnrealizedPNL": "0", "cmWalletBalance": "0",
                              "cmUnrealizedPNL": "", "updateTime": _now(),
                              "negativeBalance": "0"}], {}
            if path == "/papi/v1/um/account":  # "Get UM Account Detail": leverage settings
                return 200, {"assets": [{"asset": "USDT", "crossWalletBalance":
                                         acc.wallet_balance, "crossUnPnl": "0",
                                         "maintMargin": "0", "initialMargin": "0",
                                         "positionInitialMargin": "0",
                                         "openOrderInitialMargin": "0",
                                         "updateTime": _now()}],
                             "positions": [{k: p[k] for k in (
                                 "symbol", "initialMargin", "maintMargin", "positionInitialMargin",
                                 "openOrderInitialMargin", "leverage", "entryPrice",
                                 "positionSide", "positionAmt", "updateTime")}
                                 | {"unrealizedProfit": p["unRealizedProfit"],
                                    "maxNotional": "20000000", "bidNotional": "0",
                                    "askNotional": "0"} for p in acc.positions]}, {}
            um = path.removeprefix("/papi/v1/um")
            if um in _PAPI_UM:
                return super()._answer(req, "/fapi" + _PAPI_UM[um], params, fault)
            return 404, {"code": -5000, "msg": f"Path {path}, Method GET is invalid"}, {}
        return super()._answer(req, path, params, fault)


# (symbol, positionSide, positionAmt, entryPrice, markPrice): a one-way BTC long and both
# legs of an ETH hedge, cross (portfolio margin has no isolated UM positions)
PM_POSITIONS = (
    ("BTCUSDT", "BOTH", "0.400", "62000.00", "60000.00"),
    ("ETHUSDT", "LONG", "10.000", "3000.00", "3100.00"),
    ("ETHUSDT", "SHORT", "-5.000", "3300.00", "3100.00"),
)


def sample_portfolio_account(equity: str = "20000.00000000",
                             maint: str = "300.00000000") -> PortfolioAccount:
    """:data:`PM_POSITIONS` with ``/papi/v1/account`` stating ``equity`` and ``maint``
    (uniMMR = equity ÷ maint, 8 decimals, as Binance's example has it); the brackets are
    Binance's documented BTCUSDT ones (maintenance rate 0.4 % under 50,000).

    By Binance's definitions (FAQ "What Is the Unified Account Maintenance Margin Ratio
    (uniMMR)": equity = wallet + futures unrealized PnL; MM = Σ futuresMM + Σ MarginMM with
    futuresMM = |MMR × position × mark| − cum): the positions' PnL is −800 + 1,000 + 1,000 =
    1,200 on a UM wallet of 18,800 (equity 20,000); their maintenance 0.004 × (24,000 +
    31,000 + 15,500) = 282, and a margin loan's maintenance (MarginMM) 18: 300."""
    symbols = sorted({s for s, *_ in PM_POSITIONS})
    uni = float(equity) / float(maint)
    acc = PortfolioAccount(
        markets=[market(s, s[:-4]) for s in symbols],
        positions=[{**position(s, side, amt, entry, mark, "0", "0", 20),
                    "liquidationPrice": "0"} for s, side, amt, entry, mark in PM_POSITIONS],
        brackets=[bracket(s) for s in symbols],
        marks={s: next(m for x, *_, m in PM_POSITIONS if x == s) for s in symbols},
        papi_account={**PAPI_ACCOUNT_EXAMPLE, "uniMMR": f"{uni:.8f}", "accountEquity": equity,
                      "actualEquity": equity, "accountMaintMargin": maint},
        wallet_balance="18800.00000000",
    )
    return acc
