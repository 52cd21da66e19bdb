// The pay page: ask the server for a new JSAPI order, then let WeChat's JS bridge take the
// payment. Its "ok" is only a hint: the share is paid when WeChat Pay's notification says so,
// so the page reloads and shows what the server knows.
(function () {
  "use strict";
  var form = document.getElementById("pay");
  var status = document.getElementById("pay-status");
  if (!form) return;

  function say(text) {
    status.hidden = false;
    status.textContent = text;
  }

  function invoke(bridge) {
    if (typeof WeixinJSBridge === "undefined") {
      say("请在微信里打开这个页面付款。");
      return;
    }
    WeixinJSBridge.invoke("getBrandWCPayRequest", bridge, function (res) {
      if (res.err_msg === "get_brand_wcpay_request:ok") {
        say("正在确认付款……");
        setTimeout(function () { location.href = form.dataset.return; }, 1500);
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
})();
