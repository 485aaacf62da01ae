"""Every provider siyu speaks to: what it needs to know (settings in the clear, secrets sealed)
and how its adapter is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siyu.channels.adapters.aliyun_sms import AliyunSmsAdapter
from siyu.channels.adapters.base import Adapter, ProviderAccount, TokenStore
from siyu.channels.adapters.sandbox import SandboxAdapter
from siyu.channels.adapters.tencent_sms import TencentSmsAdapter
from siyu.channels.contracts import ChannelKind
from siyu.channels.errors import UnknownProviderError


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    secret: bool = False
    required: bool = True
    help: str = ""


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    label: str
    channels: tuple[ChannelKind, ...]
    fields: tuple[Field, ...]
    default_rate: float  # messages per second the provider allows by default
    build: Callable[[ProviderAccount, TokenStore], Adapter]


ENDPOINT = Field("endpoint", "API endpoint", required=False, help="leave empty for the provider's own")
ALL_CHANNELS = tuple(ChannelKind)

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            "sandbox",
            "Sandbox (sends nothing, simulates receipts)",
            ALL_CHANNELS,
            (
                Field("delivery_rate", "share delivered (0–1)", required=False),
                Field("reply_stop_rate", "share replying R (0–1)", required=False),
                Field("click_rate", "share clicking (0–1)", required=False),
                Field("delay_seconds", "seconds until the receipt", required=False),
            ),
            100_000.0,
            lambda account, tokens: SandboxAdapter(),
        ),
        ProviderSpec(
            "aliyun_sms",
            "Alibaba Cloud SMS 阿里云短信",
            (ChannelKind.SMS,),
            (
                Field("sign_name", "SMS signature 签名"),
                Field("region", "region", required=False, help="cn-hangzhou"),
                ENDPOINT,
                Field("access_key_id", "AccessKey ID", secret=True),
                Field("access_key_secret", "AccessKey Secret", secret=True),
            ),
            5000.0,
            lambda account, tokens: AliyunSmsAdapter(account),
        ),
        ProviderSpec(
            "tencent_sms",
            "Tencent Cloud SMS 腾讯云短信",
            (ChannelKind.SMS,),
            (
                Field("sign_name", "SMS signature 签名"),
                Field("sdk_app_id", "SmsSdkAppId"),
                Field("region", "region", required=False, help="ap-guangzhou"),
                ENDPOINT,
                Field("host", "signed Host header", required=False, help="sms.tencentcloudapi.com"),
                Field("secret_id", "SecretId", secret=True),
                Field("secret_key", "SecretKey", secret=True),
            ),
            3000.0,
            lambda account, tokens: TencentSmsAdapter(account),
        ),
    )
}


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProviderError(f"no provider named {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
