"""Every provider siyu speaks to: what it needs to know (settings in the clear, secrets sealed)
and how its adapter is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siyu.channels.adapters.aliyun_sms import AliyunSmsAdapter
from siyu.channels.adapters.base import Adapter, ProviderAccount, TokenStore
from siyu.channels.adapters.jpush import JPushAdapter
from siyu.channels.adapters.miniprogram import MiniprogramAdapter
from siyu.channels.adapters.sandbox import SandboxAdapter, record_path
from siyu.channels.adapters.smtp_email import SmtpEmailAdapter
from siyu.channels.adapters.tencent_sms import TencentSmsAdapter
from siyu.channels.adapters.webhook import WebhookAdapter
from siyu.channels.adapters.wechat_oa import WechatTemplateAdapter
from siyu.channels.adapters.wecom import WecomAdapter
from siyu.channels.contracts import ChannelKind
from siyu.channels.errors import UnknownProviderError
from siyu.core.settings import get_settings


def _sandbox(account: ProviderAccount, tokens: TokenStore) -> SandboxAdapter:
    keep = account.setting("record").strip().lower() in ("yes", "true", "1", "on")
    return SandboxAdapter(record_path(get_settings().data_dir, account.workspace_id, account.id) if keep else None)


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
                Field("sign_name", "SMS signature 签名", required=False),
                Field("app_id", "WeChat AppID", required=False),
                Field("corp_id", "WeCom CorpID", required=False),
                Field("delivery_rate", "share delivered (0–1)", required=False),
                Field("reply_stop_rate", "share replying R (0–1)", required=False),
                Field("click_rate", "share clicking (0–1)", required=False),
                Field("delay_seconds", "seconds until the receipt", required=False),
                Field(
                    "record",
                    "keep a record of what it took (yes/no)",
                    required=False,
                    help="in the data directory; lets a send cut short by a crash be checked, not repeated",
                ),
            ),
            100_000.0,
            _sandbox,
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
        ProviderSpec(
            "smtp",
            "Email over SMTP",
            (ChannelKind.EMAIL,),
            (
                Field("host", "SMTP host"),
                Field("port", "port", help="465 for SSL, 587 for STARTTLS"),
                Field("security", "security", help="ssl, starttls or none"),
                Field("from_address", "From address"),
                Field("from_name", "From name", required=False),
                Field("unsubscribe_mailto", "unsubscribe mailbox", required=False),
                Field("username", "user name", required=False),
                Field("password", "password", secret=True, required=False),
            ),
            50.0,
            lambda account, tokens: SmtpEmailAdapter(account),
        ),
        ProviderSpec(
            "wechat_oa",
            "WeChat official account 公众号 (template messages)",
            (ChannelKind.WECHAT_OA,),
            (Field("app_id", "AppID"), ENDPOINT, Field("app_secret", "AppSecret", secret=True)),
            200.0,
            lambda account, tokens: WechatTemplateAdapter(account, tokens),
        ),
        ProviderSpec(
            "miniprogram",
            "WeChat mini-program 小程序 (subscribe messages)",
            (ChannelKind.MINIPROGRAM,),
            (
                Field("app_id", "AppID"),
                Field("state", "miniprogram_state", required=False, help="formal, trial or developer"),
                ENDPOINT,
                Field("app_secret", "AppSecret", secret=True),
            ),
            200.0,
            lambda account, tokens: MiniprogramAdapter(account, tokens),
        ),
        ProviderSpec(
            "wecom",
            "WeCom 企业微信 (customer contact)",
            (ChannelKind.WECOM,),
            (Field("corp_id", "CorpID"), ENDPOINT, Field("secret", "customer-contact Secret", secret=True)),
            150.0,
            lambda account, tokens: WecomAdapter(account, tokens),
        ),
        ProviderSpec(
            "jpush",
            "JPush 极光推送",
            (ChannelKind.APP_PUSH,),
            (
                Field("app_key", "AppKey"),
                Field("audience", "address kind", required=False, help="registration_id or alias"),
                Field("apns_production", "APNs production", required=False, help="true or false"),
                ENDPOINT,
                Field("master_secret", "Master Secret", secret=True),
            ),
            500.0,
            lambda account, tokens: JPushAdapter(account),
        ),
        ProviderSpec(
            "webhook",
            "Webhook (signed JSON POST)",
            (ChannelKind.WEBHOOK,),
            (
                Field("url", "URL", required=False, help="else each message's address"),
                Field("signing_secret", "signing secret", secret=True),
            ),
            50.0,
            lambda account, tokens: WebhookAdapter(account),
        ),
    )
}


def provider_spec(name: str) -> ProviderSpec:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProviderError(f"no provider named {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
