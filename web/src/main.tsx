import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./lib/styles.css";
import { Playground } from "./playground/Playground";

createRoot(document.getElementById("root")!).render(<StrictMode><Playground /></StrictMode>);
