"""Calls to WeChat-family APIs (official accounts, mini-programs, WeCom): an access token from
the shared store, fetched when missing; every answer is HTTP 200 with ``errcode``; a token the
server calls invalid or expired is dropped and the call made once more with a fresh one."""

from __future__ import annotations

from typing import Any

import httpx

from siyu.channels.adapters.base import ProviderAccount, TokenStore, http_client, http_failure, network_failure
from siyu.channels.contracts import Outcome, PermanentFailure, RetryableFailure

# invalid credential, invalid access_token, access_token expired (WeCom: 40014, 42001 too)
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# system busy, api frequency limits: worth another try later
BUSY = {-1: 5.0, 45009: 3600.0, 45011: 60.0, 45033: 60.0, 45047: 60.0}


class WechatApi:
    def __init__(
        self,
        account: ProviderAccount,
        tokens: TokenStore,
        client: httpx.Client,
        *,
        issue_path: str,
        issue_params: dict[str, str],
    ) -> None:
        self.account = account
        self.tokens = tokens
        self.client = client
        self.issue_path = issue_path
        self.issue_params = issue_params
        self.token_key = f"{account.id}:access_token"

    def _token(self) -> str | Outcome:
        token = self.tokens.get(self.token_key)
        if token:
            return token
        try:
            response = self.client.get(self.issue_path, params=self.issue_params)
            body = response.json()
        except httpx.HTTPError as exc:
            return network_failure(exc)
        except ValueError:
            return http_failure(response)
        if body.get("access_token"):
            self.tokens.put(self.token_key, str(body["access_token"]), float(body.get("expires_in", 7200)))
            return str(body["access_token"])
        return self.classify(int(body.get("errcode", -1)), str(body.get("errmsg", "no access_token")))

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any] | Outcome:
        """The JSON answer when ``errcode`` is 0, else the outcome the error means."""
        for _ in range(2):
            token = self._token()
            if not isinstance(token, str):
                return token
            try:
                response = self.client.post(path, params={"access_token": token}, json=payload)
                body = response.json()
            except httpx.HTTPError as exc:
                return network_failure(exc)
            except ValueError:
                return http_failure(response)
            errcode = int(body.get("errcode", 0))
            if errcode == 0:
                return dict(body)
            if errcode in TOKEN_ERRORS:
                self.tokens.drop(self.token_key, token)
                continue
            return self.classify(errcode, str(body.get("errmsg", "")))
        return RetryableFailure("token", "the access token was refused twice")

    @staticmethod
    def classify(errcode: int, errmsg: str, suppress: frozenset[int] = frozenset()) -> Outcome:
        if errcode in BUSY:
            return RetryableFailure(str(errcode), errmsg, BUSY[errcode])
        return PermanentFailure(str(errcode), errmsg, suppress=errcode in suppress)


WEIXIN_ENDPOINT = "https://api.weixin.qq.com"


def app_api(account: ProviderAccount, tokens: TokenStore, client: httpx.Client | None = None) -> WechatApi:
    """The API of an official account or a mini-program: tokens by AppID and AppSecret."""
    return WechatApi(
        account,
        tokens,
        client or http_client(account, WEIXIN_ENDPOINT),
        issue_path="/cgi-bin/token",
        issue_params={
            "grant_type": "client_credential",
            "appid": account.setting("app_id"),
            "secret": account.secrets.get("app_secret", ""),
        },
    )
