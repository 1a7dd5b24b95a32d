//! The words people read on zhima's pages, in Simplified Chinese and
//! English. Every string is one entry of [`catalogue!`], which takes both
//! languages at once: a string missing in one language does not compile,
//! and the tests refuse an empty one or a Chinese entry with no Chinese in
//! it (an untranslated copy).
//!
//! The language of a request: the `lang` cookie if the person chose one,
//! else the first of `Accept-Language` zhima speaks (by q-value), else
//! Chinese, the space's language.

use actix_web::HttpRequest;

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Simplified Chinese (`zh-CN`).
    Zh,
    /// English (`en`).
    En,
}

/// The cookie that remembers a person's choice of language.
pub const LANG_COOKIE: &str = "lang";

impl Lang {
    /// Both, in the order the language switch shows them.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The BCP 47 tag (`<html lang>`, the cookie).
    pub const fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language's own name, for the switch.
    pub const fn name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    /// From a tag: `zh`, `zh-CN`, `zh-Hans`… or `en`, `en-GB`… (any case).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best of an `Accept-Language` value (highest q first; the first
    /// listed among equals), if it names one zhima speaks. At most 32 entries
    /// are read.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(u16, Lang)> = None;
        for entry in value.split(',').take(32) {
            let mut parts = entry.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), parse_q);
            let Some(q) = q.filter(|q| *q > 0) else {
                continue;
            };
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// The language of a request (cookie, then `Accept-Language`, then Chinese).
    pub fn of(req: &HttpRequest) -> Lang {
        crate::request::cookie(req, LANG_COOKIE)
            .and_then(|c| Lang::from_tag(&c))
            .or_else(|| {
                req.headers()
                    .get(actix_web::http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::Zh)
    }

    /// The words of this language.
    pub const fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

/// A q-value in thousandths (`1`, `0.8`, `0.125`), if well formed.
fn parse_q(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let q = whole * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

/// Declares [`Texts`], its two instances and the list the tests walk.
macro_rules! catalogue {
    ($($key:ident: $en:literal, $zh:literal;)*) => {
        /// Every string of the pages, in one language.
        #[derive(Debug)]
        pub struct Texts {
            $(#[doc = $en] pub $key: &'static str,)*
        }
        /// English.
        pub static EN: Texts = Texts { $($key: $en,)* };
        /// Simplified Chinese.
        pub static ZH: Texts = Texts { $($key: $zh,)* };
        /// `(key, English, Chinese)` for every string.
        pub const ENTRIES: &[(&str, &str, &str)] = &[$((stringify!($key), $en, $zh),)*];
    };
}

catalogue! {
    app_name: "zhima", "芝麻开门";
    console: "Staff console", "工作台";
    my_page: "My membership", "我的会员";
    language: "Language", "语言";
    nickname: "Nickname", "昵称";
    password: "Password", "密码";
    log_in: "Log in", "登录";
    log_out: "Log out", "退出登录";
    login_title: "Log in to zhima", "登录芝麻开门";
    login_hint: "Use the nickname and password you use at the space. A new member has no password yet: ask staff to set one.", "请使用你在空间使用的昵称和密码。新会员还没有密码：请联系工作人员设置。";
    login_refused: "Login failed. Check your nickname and password, or ask staff to set a password for you.", "登录失败。请检查昵称和密码，或请工作人员为你设置密码。";
    login_busy: "Too many login attempts right now. Wait a moment and try again.", "登录尝试过多，请稍后再试。";
    not_staff: "This page is for staff. Your own membership is on your member page.", "此页面仅限工作人员。你的会员信息在“我的会员”页面。";
    session_ended: "Your session has ended. Please log in again.", "会话已结束，请重新登录。";
    form_expired: "This form has expired. Please go back, reload the page and try again.", "表单已过期。请返回，刷新页面后重试。";
    dashboard: "Dashboard", "概览";
    door: "Door", "门禁";
    door_locked: "Locked", "已锁";
    door_unlocked: "Unlocked", "已开";
    door_fault: "Fault: the door cannot lock", "故障：门无法上锁";
    entries_today: "Entries today", "今日进门";
    refused_today: "Refused today", "今日拒绝";
    members_total: "Members", "会员总数";
    expiring_soon: "Memberships ending within 14 days", "14 天内到期的会员";
    recent_entries: "Recent entries", "最近进门记录";
    time: "Time", "时间";
    member: "Member", "会员";
    method: "Method", "方式";
    outcome: "Outcome", "结果";
    reason: "Reason", "原因";
    none_yet: "Nothing yet.", "暂无记录。";
    signed_in_as: "Signed in as", "当前用户";
    staff: "Staff", "工作人员";
    admin: "Admin", "管理员";
    oauth_login_title: "Log in", "登录";
    oauth_login_intro: "{name} asks to act for you. Log in with your member nickname and password.", "{name} 请求代表你操作。请用你的会员昵称和密码登录。";
    oauth_login_refused: "Wrong nickName or password. If you have never chosen a password, ask the space's staff to set one for you; the default password does not open this page.", "昵称或密码错误。如果你从未设置过密码，请联系空间工作人员为你设置；默认密码不能在此登录。";
    oauth_login_expired: "Your login has expired, or the request changed; log in again.", "登录已过期，或请求已改变；请重新登录。";
    consent_title: "Allow access?", "允许访问？";
    consent_asks: "{name} asks to:", "{name} 请求：";
    consent_back: "It will send you back to {uri}.", "之后将返回 {uri}。";
    allow: "Allow", "允许";
    deny: "Deny", "拒绝";
    scope_profile: "read your nickname, email, gender, VIP level and token balances", "读取你的昵称、邮箱、性别、VIP 等级和代币余额";
    scope_vip: "buy VIP membership for you with your tokens", "用你的代币为你购买 VIP 会员";
    cannot_continue: "Cannot continue", "无法继续";
    form_too_large: "The form is too large.", "表单过大。";
    form_unreadable: "The form could not be read.", "无法读取表单。";
    form_too_slow: "The form did not arrive in time.", "表单未能及时送达。";
    oauth_form_expired: "This form has expired or did not come from this site. Go back to the partner and start again.", "此表单已过期或并非来自本站。请返回合作方重新开始。";
    already_answered: "This request was already answered. Go back to the partner and start again.", "此请求已处理。请返回合作方重新开始。";
    unknown_action: "Unknown action.", "未知操作。";
    too_many_logins: "Too many failed logins. Wait a few minutes and try again.", "登录失败次数过多，请等几分钟再试。";
    logins_busy: "The server is busy checking other logins. Try again in a moment.", "服务器正忙于验证其他登录，请稍后再试。";
    cannot_check_password: "The server cannot check your password now. Try again shortly.", "服务器暂时无法验证密码，请稍后再试。";
    server_failed: "The server failed.", "服务器出错。";
    unknown_partner: "This link does not come from a registered partner (unknown client or redirect URI). You have not been sent anywhere.", "此链接并非来自已登记的合作方（客户端或回调地址未知）。你没有被转到任何地方。";
    cannot_finish: "The server cannot finish this now. Try again shortly.", "服务器现在无法完成此操作，请稍后再试。";
    server_busy: "The server is busy. Try again.", "服务器繁忙，请重试。";
    members: "Members", "会员";
    search: "Search", "搜索";
    search_hint: "Nickname (or its beginning), openid, member number or card", "昵称（或开头几个字）、openid、会员编号或门卡";
    no_match: "No member matches.", "没有匹配的会员。";
    status: "Status", "状态";
    status_ok: "OK", "有效";
    status_not_ok: "Not OK", "无效";
    status_invalid: "Deactivated", "已停用";
    expires: "Valid until", "有效期至";
    member_id: "Member number", "会员编号";
    entries_left: "Entry days left", "剩余次数";
    last_entry: "Last entry", "最近进门";
    tags: "Tags", "标签";
    card: "Card", "门卡";
    email: "Email", "邮箱";
    tokens: "Tokens (paid / free)", "代币（付费／赠送）";
    payments: "Payments", "付款记录";
    paid_at: "Paid", "付款时间";
    plan: "Plan", "套餐";
    amount: "Amount (CNY)", "金额（元）";
    not_found: "No such member.", "没有这个会员。";
    dash: "none", "无";
    access_log: "Access log", "门禁日志";
    all: "All", "全部";
    download_csv: "Download CSV", "下载 CSV";
    older: "Older entries", "更早的记录";
    unlock: "Unlock the door", "开门";
    seconds: "Seconds", "秒数";
    unlock_reason: "Reason (kept in the access log with your name)", "原因（会和你的名字一起记入门禁日志）";
    door_opened: "The door is unlocked; it locks again by itself.", "门已打开，会自动重新上锁。";
    unlock_refused: "The door was not unlocked: give a reason and a number of seconds in the range shown.", "门未打开：请填写原因，并在所示范围内填写秒数。";
    record_payment: "Record a payment", "登记付款";
    record_payment_hint: "For cash or a transfer checked by hand. Sending this form twice records the payment once.", "用于现金或人工核对的转账。同一表单提交两次只会登记一次。";
    payment_recorded: "Payment recorded.", "付款已登记。";
    payment_already: "This payment was already recorded; nothing was added.", "这笔付款已登记过，没有重复登记。";
    payment_invalid: "The payment was not recorded: check the plan, the amount (like 200 or 200.50) and the time.", "付款未登记：请检查套餐、金额（如 200 或 200.50）和时间。";
    not_admin: "This page is for admins.", "此页面仅限管理员。";
    go_back: "Go back", "返回";
    passes: "Passes", "通行证";
    admin_pages: "Admin", "管理";
    audit_log: "Audit log", "审计日志";
    recent_payments: "Latest payments", "最新付款";
    failed_scans: "Refused today", "今日被拒记录";
    saved: "Saved.", "已保存。";
    password_set: "The password is set; the member's sessions have ended.", "密码已设置；该会员的登录会话已全部结束。";
    edit_profile: "Profile", "资料";
    profile_invalid: "Not saved: check the nickname (1 to 64 characters), the email and the card number.", "未保存：请检查昵称（1 到 64 个字符）、邮箱和门卡号。";
    profile_taken: "Not saved: another member already has this nickname or card.", "未保存：已有其他会员使用这个昵称或门卡。";
    city: "City", "城市";
    memo: "Staff notes", "工作人员备注";
    save: "Save", "保存";
    web_login: "Web login", "网页登录";
    no_password_yet: "no password yet", "尚未设置密码";
    has_password: "has a password", "已设置密码";
    qr_code: "QR code", "二维码";
    download_qr: "Download the QR code", "下载二维码";
    no_qr: "No QR code: the membership is not valid now.", "没有二维码：当前会员资格无效。";
    qr_hint: "Show it at the door's scanner. It works until your membership ends.", "在门口扫码器出示即可，有效期至会员资格结束。";
    admin_actions: "Admin actions", "管理员操作";
    save_tags: "Save the tags", "保存标签";
    set_password: "Set a password", "设置密码";
    set_password_hint: "At least 8 characters. Tell the member in person; they can change it on their page.", "至少 8 个字符。请当面告诉会员；会员可在自己的页面修改。";
    deactivate: "Deactivate", "停用";
    reactivate: "Reactivate", "重新启用";
    tags_invalid: "Not saved: use the tag names shown, separated by commas.", "未保存：请使用所示的标签名，用逗号分隔。";
    password_invalid: "Not saved: a password has 8 to 200 characters and is not the default one.", "未保存：密码需 8 到 200 个字符，且不能是默认密码。";
    not_yourself: "You cannot deactivate yourself.", "不能停用你自己。";
    nothing_to_do: "Nothing changed: it was already gone.", "没有变化：它已经不存在了。";
    issue_pass: "Issue a pass", "发放通行证";
    pass_kind: "Kind", "类型";
    day_pass: "Day pass", "日票";
    event_pass: "Event pass", "活动票";
    visitor_name: "Visitor's name", "访客姓名";
    event_date: "Event day (event pass)", "活动日期（活动票）";
    valid_from: "Valid from", "生效时间";
    pass_hint: "Print it or show it on a screen: the door's scanner accepts it while it is valid.", "打印或在屏幕上出示：有效期内门口扫码器即可识别。";
    pass_invalid: "No pass was issued: check the kind, the amount and the day (today or later).", "未发放通行证：请检查类型、金额和日期（今天或以后）。";
    detail: "Detail", "详情";
    date_from: "From (day)", "起始日期";
    date_to: "To (day)", "结束日期";
    api_keys: "API keys", "API 密钥";
    name: "Name", "名称";
    scopes: "Scopes", "权限";
    created: "Created", "创建时间";
    revoke: "Revoke", "撤销";
    revoked: "Revoked", "已撤销";
    create_key: "Create the key", "创建密钥";
    key_created: "API key created", "API 密钥已创建";
    key_invalid: "No key was created: the name (letters, digits, . _ -) must be new and the scopes known.", "未创建密钥：名称（字母、数字、. _ -）不能重复，权限必须有效。";
    key_revoked: "The key is revoked.", "密钥已撤销。";
    api_key: "API key", "API 密钥";
    shown_once: "Copy it now: it is shown only this once and is not stored.", "请立即复制：它只显示这一次，系统不会保存。";
    partners: "Partners", "合作方";
    remove: "Remove", "移除";
    removed: "Removed", "已移除";
    redirect_uris: "Redirect URIs (separated by spaces)", "回调地址（用空格分隔）";
    client_kind: "Client kind", "客户端类型";
    public_client: "public (PKCE)", "公开（PKCE）";
    confidential_client: "confidential", "机密";
    add_partner: "Add the partner", "添加合作方";
    partner_added: "Partner added", "合作方已添加";
    partner_invalid: "The partner was not added: check the name, the https redirect URIs and the scopes.", "未添加合作方：请检查名称、https 回调地址和权限。";
    partner_removed: "The partner is removed and its tokens are revoked.", "合作方已移除，其令牌已全部撤销。";
    client_id: "client_id", "客户端编号 client_id";
    client_secret: "client_secret", "客户端密钥 client_secret";
    grant_tokens: "Give free tokens", "赠送代币";
    member_or_openid: "Member number or openid", "会员编号或 openid";
    token_amount: "Tokens", "代币数量";
    tokens_granted: "The tokens are credited.", "代币已到账。";
    tokens_invalid: "No tokens were given: check the member, the amount (more than 0) and the reason.", "未赠送代币：请检查会员、数量（大于 0）和原因。";
    plan_catalogue: "Plans", "套餐目录";
    grants: "Grants", "权益";
    plans_hint: "The plans come from the server's configuration file; change them there.", "套餐来自服务器配置文件，请在配置文件中修改。";
    unit_months: "months", "个月";
    unit_days: "days", "天";
    grant_membership: "membership", "会员资格";
    grant_day_pass: "day pass", "日票";
    grant_entries: "entry days", "入场天数";
    grant_tool_room: "tool room", "工具间";
    grant_nothing: "no access (a gift)", "无门禁权限（赠予）";
    audit_hint: "Every change made through the console or the command line. Nobody can edit or delete it.", "通过工作台或命令行做出的每一项更改。任何人都无法编辑或删除。";
    who: "Who", "操作人";
    action: "Action", "操作";
    subject: "About", "对象";
    before: "Before", "之前";
    after: "After", "之后";
    change_password: "Change my password", "修改密码";
    current_password: "Current password", "当前密码";
    new_password: "New password (at least 8 characters)", "新密码（至少 8 个字符）";
    new_password_again: "New password again", "再次输入新密码";
    password_changed: "Your password is changed. Your other sessions have ended.", "密码已修改，你的其他登录会话已结束。";
    passwords_differ: "The two new passwords differ.", "两次输入的新密码不一致。";
    timeline: "Validity timeline", "有效期时间线";
    timeline_hint: "Which payment grants which span, newest first. A month paid before the last one ends starts where it ends.", "每笔付款对应的有效期，最新的在前。在上一期结束前支付的月费，从上一期结束时开始计算。";
    now_word: "now", "当前";
    expires_before: "Valid until before (day)", "有效期早于（日期）";
    more: "More", "更多";
    choose_plan: "Choose a plan", "请选择套餐";
    email_qr: "Email the QR code to the member", "把二维码发到会员邮箱";
    qr_emailed: "The QR code is on its way to the member's email.", "二维码正在发送到会员邮箱。";
    qr_no_email: "This member has no email address.", "该会员没有邮箱地址。";
    no_mail_server: "No mail server is configured, so no email can be sent.", "未配置邮件服务器，无法发送邮件。";
    reminders_by_email: "Reminder emails before the membership ends", "会员到期前发送提醒邮件";
    current_wrong: "The current password is wrong.", "当前密码不正确。";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `text` holds a CJK ideograph or CJK punctuation.
    fn has_chinese(text: &str) -> bool {
        text.chars().any(|c| {
            ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3000}'..='\u{303f}').contains(&c)
        })
    }

    #[test]
    fn every_string_exists_in_both_languages() {
        assert!(!ENTRIES.is_empty());
        for (key, en, zh) in ENTRIES {
            assert!(!en.trim().is_empty(), "{key}: no English");
            assert!(!zh.trim().is_empty(), "{key}: no Chinese");
            assert!(has_chinese(zh), "{key}: the Chinese is not Chinese: {zh:?}");
            assert!(!has_chinese(en), "{key}: Chinese in the English: {en:?}");
        }
    }

    #[test]
    fn accept_language_picks_the_best_language_spoken() {
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("fr, en;q=0.5, zh;q=0.7"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("de, fr;q=0.8"), None);
        assert_eq!(
            Lang::from_accept_language("en;q=0, zh;q=0.1"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("en;q=2, zh;q=x"), None);
        assert_eq!(Lang::from_accept_language(""), None);
        assert_eq!(Lang::from_tag("ZH-hans"), Some(Lang::Zh));
        assert_eq!(Lang::from_tag("english"), None);
    }
}
