import type { Theme } from "vitepress";
import DefaultTheme from "vitepress/theme";
import { defineAsyncComponent, defineComponent } from "vue";
import LbFigure from "./components/LbFigure.vue";

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    // figures of the concept pages, computed at build time (scripts/figures.ts)
    app.component("LbFigure", LbFigure);
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
