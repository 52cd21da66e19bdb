// The pay page: ask the server for a new JSAPI order, then let WeChat's JS bridge take the
// payment. Its "ok" is only a hint: the share is paid when WeChat Pay's notification says so,
// so the page asks the server (GET /pay/<token>/state) until it knows, then shows it. The
// sandbox's 模拟支付成功 comes back with ?paying=1 and waits the same way.
(function () {
  "use strict";
  var form = document.getElementById("pay");
  var status = document.getElementById("pay-status");
  if (!form) return;
  var POLL_MS = 700;
  var GIVE_UP_MS = 60000;

  function say(text) {
    status.hidden = false;
    status.textContent = text;
  }

  function waitForNotification() {
    var started = Date.now();
    form.querySelector("button").disabled = true; // no second payment while the first is told
    say("正在等微信支付确认付款……");
    function ask() {
      fetch(status.dataset.state, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : {}; })
        .then(function (data) {
          if (data.paid) {
            location.replace(form.dataset.return); // the page now says it went through
          } else if (data.state && data.state !== "unpaid") {
            location.replace(form.dataset.return); // lapsed meanwhile: the page says so
          } else if (Date.now() - started > GIVE_UP_MS) {
            say("还没收到微信支付的确认。付款成功的话，稍后刷新这个页面就能看到。");
            form.querySelector("button").disabled = false;
          } else {
            setTimeout(ask, POLL_MS);
          }
        })
        .catch(function () { setTimeout(ask, POLL_MS * 3); });
    }
    ask();
  }

  function invoke(bridge) {
    if (typeof WeixinJSBridge === "undefined") {
      say("请在微信里打开这个页面付款。");
      return;
    }
    WeixinJSBridge.invoke("getBrandWCPayRequest", bridge, function (res) {
      if (res.err_msg === "get_brand_wcpay_request:ok") {
        waitForNotification();
      } else if (res.err_msg === "get_brand_wcpay_request:cancel") {
        say("已取消付款，可以再试一次。");
      } else {
        say("付款没有成功，请再试一次。");
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    say("正在下单……");
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.bridge) invoke(data.bridge);
        else say(data.error || "暂时无法付款，请稍后再试。");
      })
      .catch(function () { say("网络不太好，请稍后再试。"); });
  });

  if (form.dataset.waiting) waitForNotification();
})();
