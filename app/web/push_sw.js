// CartResQ service worker: shows the cart reminders sent by web push; a tap opens the saved cart.
// The payload is {title, body, url}, encrypted for this browser (RFC 8291); url is the signed restore link.
self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = {};
  }
  if (!data.title) {
    return;
  }
  event.waitUntil(
    self.registration.showNotification(data.title, {
      body: data.body || "",
      data: { url: data.url },
      tag: "cartresq-cart",
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (typeof url === "string" && /^https?:\/\//.test(url)) {
    event.waitUntil(clients.openWindow(url));
  }
});
