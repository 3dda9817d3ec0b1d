import type { Theme } from "vitepress";
import DefaultTheme from "vitepress/theme";
import { defineAsyncComponent, defineComponent } from "vue";

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    // The playground (and the lowbit packages it runs) loads only in the browser, only on the page
    // that uses it; the server render gets an empty placeholder (the page wraps it in <ClientOnly>).
    app.component(
      "LowbitPlayground",
      import.meta.env.SSR
        ? defineComponent({ render: () => null })
        : defineAsyncComponent(() => import("./playground/PlaygroundApp.vue")),
    );
  },
} satisfies Theme;
